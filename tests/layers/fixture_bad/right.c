#include "right.h"

int right_two(void) {
    return 2;
}
