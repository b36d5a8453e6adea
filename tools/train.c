/*
 * `lamina train`: the chapter's MLP built from Dense plugins, trained with autograd and SGD on
 * the built-in data, or a LeNet-style CNN trained with Adam on the UCI handwritten digits; a
 * progress line per epoch, the test accuracy, and the accuracy of the saved model reloaded.
 */
#define _DEFAULT_SOURCE /* mkstemps */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    const char *backend, *data, *data_file, *save, *optimizer, *schedule, *model;
    int64_t epochs, batch, hidden, n_train, n_test, warmup;
    double lr, momentum;
    uint64_t seed;
    int shared, distributed;
} options;

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: lamina train [options]\n\n"
        "Trains an MLP (in -> hidden (relu) -> classes) built from the Dense plugin, or a\n"
        "LeNet-style CNN (conv-BatchNorm-relu-pool x2, dropout, dense).\n\n"
        "  --model NAME       mlp or cnn (default mlp)\n"
        "  --backend SPEC     cpu, vulkan, vulkan:1, auto (default: $LAMINA_BACKEND or cpu)\n"
        "  --epochs N         passes over the training set (default 10; cnn 30)\n"
        "  --batch-size N     samples per step (default 64; cnn 32)\n"
        "  --lr X             peak learning rate (default 0.1; cnn 0.005)\n"
        "  --schedule NAME    learning rate schedule: cosine (decays from --lr to 0 over\n"
        "                     the run, step by step) or constant (default cosine)\n"
        "  --warmup N         linear warm-up over the first N steps, from a third of --lr\n"
        "                     (default 0)\n"
        "  --momentum X       SGD momentum (default 0.9)\n"
        "  --optimizer NAME   sgd or adam (default sgd; cnn adam)\n"
        "  --hidden N         MLP hidden units (default 256)\n"
        "  --shared           add the chapter's shared layer: hidden -> Dense(hidden) used twice\n"
        "  --seed N           initialization, shuffling and dropout seed (default 0)\n"
        "  --distributed      data-parallel over the ranks of mpirun/srun (lamina_comm_mpi.so):\n"
        "                     --batch-size is the global batch, each of N ranks takes its\n"
        "                     1/N share (rounded up) of a shuffled epoch; every rank gets\n"
        "                     the same number of samples (the epoch's last train-size %% N\n"
        "                     are dropped); rank 0 prints and saves\n"
        "  --data digits|PATH digits: the UCI handwritten digits (1,797 8x8 images from\n"
        "                     Debian's python3-sklearn, split 1,437 train / 360 test by a\n"
        "                     fixed shuffle); PATH: a directory of MNIST IDX files\n"
        "                     (train-images-idx3-ubyte, ...) or a CSV file with the label in\n"
        "                     the first column (last fifth is the test set); default: the\n"
        "                     built-in wedges data set (mlp), digits (cnn)\n"
        "  --data-file FILE   digits: read FILE instead of $LAMINA_DIGITS or\n"
        "                     " DIGITS_DEFAULT_PATH "\n"
        "  --train-size N     built-in data: training samples (default 20000)\n"
        "  --save FILE        save the trained parameters to FILE (safetensors) and keep\n"
        "                     it; default: a temporary file, removed after the reload check\n");
}

static int parse_int(const char *name, const char *v, int64_t lo, int64_t *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v ? v : "", &end, 10);
    if (!v || *end || errno || x < lo) {
        fprintf(stderr, "lamina train: %s needs an integer >= %lld, got '%s'\n", name,
                (long long)lo, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_double(const char *name, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v ? v : "", &end);
    if (!v || *end || errno || !isfinite(x) || x < 0) {
        fprintf(stderr, "lamina train: %s needs a number >= 0, got '%s'\n", name, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

static int parse(int argc, char **argv, options *o) {
    /* Negative or NULL: not given; the model's default is filled in below. */
    *o = (options){.epochs = -1,
                   .batch = -1,
                   .hidden = 256,
                   .lr = -1,
                   .momentum = 0.9,
                   .n_train = 20000,
                   .n_test = 5000,
                   .schedule = "cosine",
                   .model = "mlp"};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        int rc = 0, takes = 1;
        if (strcmp(a, "--backend") == 0) {
            o->backend = v;
        } else if (strcmp(a, "--data") == 0) {
            o->data = v;
        } else if (strcmp(a, "--data-file") == 0) {
            o->data_file = v;
        } else if (strcmp(a, "--model") == 0) {
            o->model = v;
        } else if (strcmp(a, "--save") == 0) {
            o->save = v;
        } else if (strcmp(a, "--optimizer") == 0) {
            o->optimizer = v;
        } else if (strcmp(a, "--schedule") == 0) {
            o->schedule = v;
        } else if (strcmp(a, "--epochs") == 0) {
            rc = parse_int(a, v, 1, &o->epochs);
        } else if (strcmp(a, "--batch-size") == 0) {
            rc = parse_int(a, v, 1, &o->batch);
        } else if (strcmp(a, "--warmup") == 0) {
            rc = parse_int(a, v, 0, &o->warmup);
        } else if (strcmp(a, "--hidden") == 0) {
            rc = parse_int(a, v, 1, &o->hidden);
        } else if (strcmp(a, "--train-size") == 0) {
            rc = parse_int(a, v, 10, &o->n_train);
        } else if (strcmp(a, "--seed") == 0) {
            rc = parse_int(a, v, 0, &n);
            o->seed = (uint64_t)n;
        } else if (strcmp(a, "--lr") == 0) {
            rc = parse_double(a, v, &o->lr);
        } else if (strcmp(a, "--momentum") == 0) {
            rc = parse_double(a, v, &o->momentum);
        } else if (strcmp(a, "--shared") == 0) {
            o->shared = 1;
            takes = 0;
        } else if (strcmp(a, "--distributed") == 0) {
            o->distributed = 1;
            takes = 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "lamina train: unknown option '%s'\n\n", a);
            usage(stderr);
            return -1;
        }
        if (rc != 0) {
            return -1;
        }
        if (takes) {
            if (v == NULL) {
                fprintf(stderr, "lamina train: %s needs a value\n", a);
                return -1;
            }
            i++;
        }
    }
    if (strcmp(o->model, "mlp") != 0 && strcmp(o->model, "cnn") != 0) {
        fprintf(stderr, "lamina train: --model must be mlp or cnn, got '%s'\n", o->model);
        return -1;
    }
    int cnn = strcmp(o->model, "cnn") == 0;
    o->epochs = o->epochs > 0 ? o->epochs : cnn ? 30 : 10;
    o->batch = o->batch > 0 ? o->batch : cnn ? 32 : 64;
    o->lr = o->lr >= 0 ? o->lr : cnn ? 0.005 : 0.1;
    o->optimizer = o->optimizer ? o->optimizer : cnn ? "adam" : "sgd";
    o->data = o->data ? o->data : cnn ? "digits" : NULL;
    if (o->data_file && (o->data == NULL || strcmp(o->data, "digits") != 0)) {
        fprintf(stderr, "lamina train: --data-file is the digits file; it needs --data digits\n");
        return -1;
    }
    if (strcmp(o->optimizer, "sgd") != 0 && strcmp(o->optimizer, "adam") != 0) {
        fprintf(stderr, "lamina train: --optimizer must be sgd or adam, got '%s'\n", o->optimizer);
        return -1;
    }
    if (strcmp(o->schedule, "cosine") != 0 && strcmp(o->schedule, "constant") != 0) {
        fprintf(stderr, "lamina train: --schedule must be cosine or constant, got '%s'\n",
                o->schedule);
        return -1;
    }
    return 0;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((st = (call)) != LAM_OK) {                                                             \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static lam_status build(const options *o, const dataset *d, lam_block **out) {
    return strcmp(o->model, "cnn") == 0 ? model_cnn(d->image, d->classes, out)
                                        : model_mlp(o->hidden, o->shared, d->classes, out);
}

/* The trainer's schedule: cosine decays the rate from o->lr to 0 over the run, step by step,
 * so that the last epochs settle instead of ending on a loss spike, which a constant rate with
 * momentum 0.9 hits for some seeds and float rounding orders; --warmup steps ramp up first. */
static lam_status set_schedule(lam_trainer *t, const options *o, int64_t total_steps) {
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    if (strcmp(o->schedule, "cosine") == 0) {
        s.kind = LAM_LR_COSINE;
        s.t_max = total_steps - o->warmup > 1 ? total_steps - o->warmup : 1;
    }
    s.warmup_steps = o->warmup;
    return lam_trainer_set_schedule(t, &s);
}

/* The shortest decimal text of v that reads back as v (buf: 32 bytes). */
static const char *exact(double v, char *buf) {
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, 32, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    return buf;
}

/* A batch of rows idx[0..n) of d: x (n, dim), or (n, C, H, W) when `images`, and y (n). */
static lam_status batch_tensors(lam_ctx *ctx, const dataset *d, int images, const int64_t *idx,
                                int64_t n, float *xb, float *yb, lam_tensor **x, lam_tensor **y) {
    for (int64_t i = 0; i < n; i++) {
        memcpy(xb + i * d->dim, d->x + idx[i] * d->dim, (size_t)d->dim * sizeof *xb);
        yb[i] = d->y[idx[i]];
    }
    int64_t xd[4] = {n, d->dim};
    if (images) {
        memcpy(xd + 1, d->image, sizeof d->image);
    }
    lam_shape xs, ys;
    lam_shape_init(&xs, images ? 4 : 2, xd);
    lam_shape_init(&ys, 1, &n);
    /* int32 class labels: the loss uses them on the device, without a host one-hot per batch */
    int32_t *yi = malloc((size_t)n * sizeof *yi);
    for (int64_t i = 0; yi != NULL && i < n; i++) {
        yi[i] = (int32_t)yb[i];
    }
    lam_status st = yi ? lam_tensor_from_data(ctx, &xs, xb, (size_t)(n * d->dim), x)
                       : lam_set_error(LAM_ERR_OUT_OF_MEMORY, "lamina train: Out of memory");
    if (st == LAM_OK && (st = lam_tensor_create_dtype(ctx, LAM_DTYPE_I32, &ys, y)) == LAM_OK &&
        (st = lam_tensor_write_bytes(*y, yi, (size_t)n * sizeof *yi)) != LAM_OK) {
        lam_tensor_release(*y);
        *y = NULL;
    }
    if (st != LAM_OK && yi != NULL) {
        lam_tensor_release(*x);
        *x = NULL;
    }
    free(yi);
    return st;
}

/* Correct predictions of `out` (batch, classes) against labels. */
static lam_status count_correct(const lam_tensor *out, const float *labels, int64_t n,
                                int64_t *correct) {
    lam_tensor *am;
    lam_status st = lam_op_argmax(out, 1, &am);
    if (st != LAM_OK) {
        return st;
    }
    float *p = malloc((size_t)n * sizeof *p);
    st = p ? lam_tensor_read(am, p, (size_t)n) : LAM_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; st == LAM_OK && i < n; i++) {
        *correct += p[i] == labels[i];
    }
    free(p);
    lam_tensor_release(am);
    return st;
}

static lam_status evaluate(lam_block *net, lam_ctx *ctx, const dataset *d, int images,
                           int64_t batch, double *accuracy) {
    int64_t correct = 0;
    int64_t *idx = malloc((size_t)batch * sizeof *idx);
    float *xb = malloc((size_t)(batch * d->dim) * sizeof *xb), *yb = malloc((size_t)batch * 4);
    lam_status st = (idx && xb && yb) ? LAM_OK : LAM_ERR_OUT_OF_MEMORY;
    for (int64_t s = 0; st == LAM_OK && s < d->n; s += batch) {
        int64_t n = d->n - s < batch ? d->n - s : batch;
        for (int64_t i = 0; i < n; i++) {
            idx[i] = s + i;
        }
        lam_tensor *x, *y, *out;
        st = batch_tensors(ctx, d, images, idx, n, xb, yb, &x, &y);
        if (st == LAM_OK) {
            st = lam_block_call(net, x, &out);
            if (st == LAM_OK) {
                st = count_correct(out, yb, n, &correct);
                lam_tensor_release(out);
            }
            lam_tensor_release(x);
            lam_tensor_release(y);
        }
    }
    free(idx);
    free(xb);
    free(yb);
    *accuracy = d->n ? (double)correct / (double)d->n : 0.0;
    return st;
}

/* Sums an epoch's loss, correct count and sample count over the ranks. */
static lam_status reduce_sums(lam_comm *comm, double *loss, int64_t *correct, int64_t *seen) {
    float v[3] = {(float)*loss, (float)*correct, (float)*seen};
    int64_t three = 3;
    lam_shape s;
    lam_shape_init(&s, 1, &three);
    lam_tensor *t;
    lam_status st = lam_tensor_from_data(NULL, &s, v, 3, &t);
    if (st == LAM_OK && (st = lam_comm_allreduce(comm, t)) == LAM_OK) {
        st = lam_tensor_read(t, v, 3);
    }
    lam_tensor_release(t);
    if (st == LAM_OK) {
        *loss = v[0];
        *correct = (int64_t)v[1];
        *seen = (int64_t)v[2];
    }
    return st;
}

int cmd_train(int argc, char **argv) {
    options o;
    int prc = parse(argc, argv, &o);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    char err[512];
    dataset train = {0}, test = {0};
    const char *what = "built-in wedges data set";
    int cnn = strcmp(o.model, "cnn") == 0;
    if (o.data && strcmp(o.data, "digits") == 0) {
        if (dataset_digits(o.data_file, &train, &test, err, sizeof err) != 0) {
            fprintf(stderr, "lamina train: %s\n", err);
            return 1;
        }
        what = "UCI digits";
    } else if (o.data) {
        if (dataset_load(o.data, &train, &test, err, sizeof err) != 0) {
            fprintf(stderr, "lamina train: %s\n", err);
            return 1;
        }
        what = o.data;
    } else if (dataset_rings(o.n_train, 20, o.seed, &train, err, sizeof err) != 0 ||
               dataset_rings(o.n_test, 20, o.seed + 1000003, &test, err, sizeof err) != 0) {
        fprintf(stderr, "lamina train: %s\n", err);
        dataset_free(&train);
        return 1;
    }
    if (cnn && (train.image[0] == 0 || train.image[1] < 4 || train.image[2] < 4)) {
        fprintf(stderr,
                "lamina train: --model cnn needs images of at least 4x4 (--data digits, or a "
                "directory of IDX files); %s holds %s\n",
                what, train.image[0] ? "smaller images" : "feature vectors");
        dataset_free(&train);
        dataset_free(&test);
        return 1;
    }
    lam_status st = LAM_OK;
    lam_initializer *init = NULL;
    lam_ctx *ctx = NULL;
    lam_block *net = NULL, *fresh = NULL;
    char tmp[] = "/tmp/lamina-train-XXXXXX.safetensors";
    const char *path = NULL;
    lam_param_list *params = NULL;
    lam_trainer *trainer = NULL;
    int64_t *order = NULL;
    float *xb = NULL, *yb = NULL;
    lam_comm *comm = NULL;
    int rank = 0, size = 1;
    lam_seed(o.seed);
    TRY(lam_ctx_get(o.backend, &ctx));
    if (o.distributed) {
        if ((st = lam_comm_open(NULL, &comm)) != LAM_OK) {
            fprintf(stderr,
                    "lamina train: --distributed needs a communicator: %s\n"
                    "  Install Open MPI (Debian: apt-get install libopenmpi-dev openmpi-bin), "
                    "rebuild Lamina so that it builds lamina_comm_mpi.so, and start the ranks "
                    "with mpirun -np N lamina train --distributed\n",
                    lam_last_error());
            lam_shutdown();
            dataset_free(&train);
            dataset_free(&test);
            return 1;
        }
        rank = lam_comm_rank(comm);
        size = lam_comm_size(comm);
    }
    TRY(build(&o, &train, &net));
    if (cnn) { /* Xavier (Gluon's LeNet recipe); the default Uniform(0.07) trains slowly */
        TRY(lam_init_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f, &init));
    }
    TRY(lam_block_initialize(net, init, ctx, 0));
    TRY(lam_block_collect_params(net, NULL, &params));
    /* Typed options: the learning rate goes in as the double it was parsed to. */
    char topts[128];
    if (strcmp(o.optimizer, "sgd") == 0) {
        lam_sgd_options so = LAM_SGD_OPTIONS_INIT;
        so.learning_rate = o.lr;
        so.momentum = o.momentum;
        TRY(lam_trainer_create_sgd(params, &so, &trainer));
        char lr[32], mom[32];
        snprintf(topts, sizeof topts, "learning_rate=%s, momentum=%s",
                 exact(lam_trainer_learning_rate(trainer), lr), exact(o.momentum, mom));
    } else {
        lam_adam_options ao = LAM_ADAM_OPTIONS_INIT;
        ao.learning_rate = o.lr;
        TRY(lam_trainer_create_adam(params, &ao, &trainer));
        char lr[32];
        snprintf(topts, sizeof topts, "learning_rate=%s",
                 exact(lam_trainer_learning_rate(trainer), lr));
    }
    if (comm != NULL) {
        TRY(lam_trainer_set_comm(trainer, comm, 0));
    }
    /* Each rank's share of an epoch and of a batch (all of them without --distributed). */
    int64_t n_mine = comm ? lam_sampler_count(train.n, size, 0) : train.n;
    int64_t batch = (o.batch + size - 1) / size;
    if (rank == 0 && comm != NULL) {
        printf("lamina train: %d ranks, %lld samples and batches of %lld per rank\n", size,
               (long long)n_mine, (long long)batch);
    }
    if (rank == 0) {
        if (cnn) {
            printf("lamina train: CNN %lldx%lldx%lld -> (conv %d - bn - relu - pool) -> (conv %d - "
                   "bn - relu - pool) -> dropout %g -> %lld on %s; ",
                   (long long)train.image[0], (long long)train.image[1], (long long)train.image[2],
                   CNN_C1, CNN_C2, CNN_DROPOUT, (long long)train.classes, lam_ctx_name(ctx));
        } else {
            printf("lamina train: MLP %lld -> %lld (relu)%s -> %lld on %s; ", (long long)train.dim,
                   (long long)o.hidden, o.shared ? " -> shared x2" : "", (long long)train.classes,
                   lam_ctx_name(ctx));
        }
        printf("%s (%lld train, %lld test); %s %s, %s schedule, batch %lld, seed %llu\n", what,
               (long long)train.n, (long long)test.n, o.optimizer, topts, o.schedule,
               (long long)o.batch, (unsigned long long)o.seed);
    }
    fflush(stdout);
    order = malloc((size_t)train.n * sizeof *order);
    xb = malloc((size_t)(batch * train.dim) * sizeof *xb);
    yb = malloc((size_t)batch * sizeof *yb);
    if (!order || !xb || !yb) {
        st = lam_set_error(LAM_ERR_OUT_OF_MEMORY, "lamina train: Out of memory");
        goto fail;
    }
    int tty = comm == NULL && isatty(STDOUT_FILENO);
    uint64_t shuffle = o.seed * 6364136223846793005ULL + 1442695040888963407ULL;
    double t_start = now();
    int64_t steps_per_epoch = (n_mine + batch - 1) / batch;
    TRY(set_schedule(trainer, &o, steps_per_epoch * o.epochs));
    for (int64_t epoch = 1; epoch <= o.epochs; epoch++) {
        if (comm != NULL) {
            TRY(lam_sampler_indices(train.n, rank, size, o.seed, epoch, LAM_SAMPLER_SHUFFLE, order,
                                    (size_t)train.n));
        }
        for (int64_t i = 0; comm == NULL && i < train.n; i++) {
            order[i] = i;
        }
        for (int64_t i = comm ? 0 : train.n - 1; i > 0; i--) { /* Fisher-Yates with an LCG */
            shuffle = shuffle * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t j = (int64_t)((shuffle >> 33) % (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double loss_sum = 0, t0 = now(), last_draw = 0;
        int64_t seen = 0, correct = 0;
        for (int64_t s = 0; s < n_mine; s += batch) {
            int64_t n = n_mine - s < batch ? n_mine - s : batch;
            lam_tensor *x = NULL, *y = NULL, *out = NULL, *loss = NULL, *sum = NULL;
            float ls = 0;
            st = batch_tensors(ctx, &train, cnn, order + s, n, xb, yb, &x, &y);
            lam_autograd_set_recording(1);
            if (st == LAM_OK) {
                st = lam_block_call(net, x, &out);
            }
            if (st == LAM_OK) {
                st = lam_loss_softmax_cross_entropy(out, y, &loss);
            }
            lam_autograd_set_recording(0);
            if (st == LAM_OK) {
                st = lam_autograd_backward(loss, NULL);
            }
            if (st == LAM_OK) {
                st = lam_trainer_step(trainer, n);
            }
            if (st == LAM_OK) {
                st = lam_op_sum(loss, NULL, 0, 0, &sum);
            }
            if (st == LAM_OK) {
                st = lam_tensor_scalar(sum, &ls);
            }
            if (st == LAM_OK) {
                st = count_correct(out, yb, n, &correct);
            }
            lam_tensor_release(x);
            lam_tensor_release(y);
            lam_tensor_release(out);
            lam_tensor_release(loss);
            lam_tensor_release(sum);
            if (st != LAM_OK) {
                goto fail;
            }
            loss_sum += ls;
            seen += n;
            double t = now();
            if (tty && (t - last_draw > 0.1 || seen == train.n)) {
                last_draw = t;
                printf("\r\033[Kepoch %3lld/%lld  loss %.4f  train acc %6.2f%%  %8.0f samples/s  "
                       "[%3.0f%%]",
                       (long long)epoch, (long long)o.epochs, loss_sum / (double)seen,
                       100.0 * (double)correct / (double)seen, (double)seen / (t - t0),
                       100.0 * (double)seen / (double)train.n);
                fflush(stdout);
            }
        }
        double dt = now() - t0;
        if (comm != NULL) { /* the epoch's figures over every rank */
            TRY(reduce_sums(comm, &loss_sum, &correct, &seen));
        }
        if (rank == 0) {
            printf("%sepoch %3lld/%lld  loss %.4f  train acc %6.2f%%  lr %.4g  %8.0f samples/s\n",
                   tty ? "\r\033[K" : "", (long long)epoch, (long long)o.epochs,
                   loss_sum / (double)seen, 100.0 * (double)correct / (double)seen,
                   lam_trainer_learning_rate(trainer), (double)seen / dt);
        }
        fflush(stdout);
    }
    double acc;
    if (rank == 0) {
        TRY(evaluate(net, ctx, &test, cnn, 256, &acc));
        printf("trained in %.1f s; test accuracy %.2f%% (%lld samples)\n", now() - t_start,
               100.0 * acc, (long long)test.n);
    }
    /* Save, reload into a fresh model of the same architecture, and evaluate that one.
     * Distributed: rank 0 saves; every rank loads --save FILE (a shared file system on a
     * cluster), rank 0 alone a temporary file. */
    if (rank != 0 && o.save == NULL) {
        goto fail;
    }
    path = o.save;
    if (path == NULL) {
        int fd = mkstemps(tmp, 12);
        if (fd < 0) {
            st = lam_set_error(LAM_ERR_IO, "lamina train: Cannot create a temporary file, %s",
                               strerror(errno));
            goto fail;
        }
        close(fd);
        path = tmp;
    }
    if (rank == 0) {
        TRY(lam_block_save_parameters(net, path));
    }
    if (comm != NULL && o.save != NULL) {
        TRY(lam_comm_barrier(comm));
    }
    TRY(build(&o, &train, &fresh));
    lam_load_options lo = LAM_LOAD_OPTIONS_INIT;
    lo.ctx = ctx;
    TRY(lam_block_load_parameters(fresh, path, &lo));
    TRY(evaluate(fresh, ctx, &test, cnn, 256, &acc));
    if (rank == 0) {
        printf("saved to %s; reloaded into a fresh model: test accuracy %.2f%%\n",
               o.save ? o.save : "a temporary file", 100.0 * acc);
    }
fail:
    if (o.save == NULL && path != NULL && rank == 0) {
        remove(path);
    }
    if (st != LAM_OK) {
        fprintf(stderr, "lamina train: %s\n", lam_last_error());
    }
    free(order);
    free(xb);
    free(yb);
    lam_trainer_destroy(trainer);
    lam_initializer_release(init);
    lam_param_list_destroy(params);
    lam_block_release(net);
    lam_block_release(fresh);
    dataset_free(&train);
    dataset_free(&test);
    if (comm != NULL) {
        (void)lam_comm_close(comm);
    }
    lam_shutdown();
    return st == LAM_OK ? 0 : 1;
}
