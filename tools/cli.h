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
    /* Images: channels, height, width with c*h*w == dim, rows stored CHW; 0s for plain
     * feature vectors (CSV, the built-in data). */
    int64_t image[3];
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

/* Where Debian's python3-sklearn puts the UCI handwritten digits. */
#define DIGITS_DEFAULT_PATH "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
#define DIGITS_ROWS         1797
#define DIGITS_TRAIN        1437  /* the rest, 360, is the test set */
#define DIGITS_SPLIT_SEED   20150 /* fixed: every run and seed tests on the same 360 images */
/* The path the digits are read from: `file` when not NULL, else $LAMINA_DIGITS when set and
 * not empty, else DIGITS_DEFAULT_PATH. */
const char *digits_path(const char *file);
/* The UCI digits (gzip'ed CSV: 64 pixels 0..16 then the label per row; 1,797 rows) from
 * digits_path(file), as 1x8x8 images scaled to [0, 1], split by a fixed shuffle into
 * DIGITS_TRAIN training and 360 test images. Returns 0, or -1 with a message in err (a missing
 * file names the path and the Debian package that provides it). */
int dataset_digits(const char *file, dataset *train, dataset *test, char *err, size_t cap);

/* The chapter's MLP: Dense(hidden, relu) [-> Dense(hidden, relu) used twice, sharing its
 * parameters, when shared_layer] -> Dense(classes); input size deferred. */
lam_status model_mlp(int64_t hidden, int shared_layer, int64_t classes, lam_block **out);

/* The CNN's sizes: two 3x3 convolutions (padding 1) of C1 and C2 channels, each followed by
 * BatchNorm, relu and 2x2 max pooling; dropout; a dense layer to the classes. */
#define CNN_C1      16
#define CNN_C2      32
#define CNN_DROPOUT 0.25
/* LeNet-style CNN for images of image[0] channels, image[1] x image[2] pixels (each at least
 * 4), as a Sequential of Conv2D, BatchNorm, Activation(relu), MaxPool2D, Conv2D, BatchNorm,
 * Activation(relu), MaxPool2D, Flatten, Dropout, Dense (children 0..10). */
lam_status model_cnn(const int64_t image[3], int64_t classes, lam_block **out);

int cmd_train(int argc, char **argv);
/* `lamina conform PLUGIN.so ...`: the plugin conformance kit (conform.c). */
int cmd_conform(int argc, char **argv);
/* lamina inspect FILE: lists a safetensors file's tensors and metadata. */
int cmd_inspect(int argc, char **argv);

#endif
