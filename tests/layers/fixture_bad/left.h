/* Same level as right.h, and the two include each other. */
#ifndef FIXTURE_LEFT_H
#define FIXTURE_LEFT_H
#include "right.h"
int left_one(void);
#endif
