#ifndef FIXTURE_LOW_H
#define FIXTURE_LOW_H
int low_double(int n);
#endif
