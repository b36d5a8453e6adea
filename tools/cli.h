/* Shared declarations of the `lamina` command-line program. */
#ifndef LAMINA_CLI_H
#define LAMINA_CLI_H

#include "lamina/lamina.h"

#include <stdint.h>

/* A labelled data set in host memory: n rows of dim features, labels in [0, classes). */
typedef struct dataset {
    float *x;
    float *y;
    int64_t n, dim, classes;
} dataset;

void dataset_free(dataset *d);
/* The built-in data set: 10 classes, each made of two opposite wedges of a disc, in a 2-D
 * plane embedded in `dim` features with noise; not linearly separable. Deterministic for a
 * seed. */
int dataset_rings(int64_t n, int64_t dim, uint64_t seed, dataset *out, char *err, size_t cap);
/* MNIST-style IDX files (images + labels) or a CSV file with the label in the first column.
 * For a directory, loads train-* and t10k-* IDX files into train and test; for a CSV, test is
 * the last fifth. Returns 0 or -1 with a message in err. */
int dataset_load(const char *path, dataset *train, dataset *test, char *err, size_t cap);

int cmd_train(int argc, char **argv);
/* `lamina conform PLUGIN.so ...`: the plugin conformance kit (conform.c). */
int cmd_conform(int argc, char **argv);
/* lamina inspect FILE: lists a safetensors file's tensors and metadata. */
int cmd_inspect(int argc, char **argv);

#endif
