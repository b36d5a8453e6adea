#ifndef FIXTURE_HIGH_H
#define FIXTURE_HIGH_H
int high_quadruple(int n);
#endif
