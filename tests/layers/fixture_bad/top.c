#include "top.h"

#include "base.h"

int top_count(int n) {
    return n <= 0 ? 0 : 1 + base_count(n - 1);
}
