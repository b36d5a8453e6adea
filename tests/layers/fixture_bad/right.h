#ifndef FIXTURE_RIGHT_H
#define FIXTURE_RIGHT_H
#include "left.h"
int right_two(void);
#endif
