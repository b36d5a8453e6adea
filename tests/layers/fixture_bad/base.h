#ifndef FIXTURE_BASE_H
#define FIXTURE_BASE_H
int base_count(int n);
#endif
