/*
 * The "silent" backend: oob_backend.c with a correct add and a mul that returns LAM_OK without
 * writing its output, which would give silently wrong results: the backend op checks poison
 * the output before each call and must catch it.
 */
#define SILENT_BACKEND 1
#include "oob_backend.c"
