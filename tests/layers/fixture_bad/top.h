#ifndef FIXTURE_TOP_H
#define FIXTURE_TOP_H
int top_count(int n);
#endif
