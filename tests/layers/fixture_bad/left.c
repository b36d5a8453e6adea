#include "left.h"

int left_one(void) {
    return 1;
}
