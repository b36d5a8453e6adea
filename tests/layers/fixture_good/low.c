#include "low.h"

int low_double(int n) {
    return 2 * n;
}
