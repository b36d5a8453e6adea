#include "high.h"

#include "low.h"

int high_quadruple(int n) {
    return low_double(low_double(n));
}
