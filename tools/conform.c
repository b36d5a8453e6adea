/*
 * conform.c - `lamina conform PLUGIN.so`: the command of the plugin conformance kit. It
 * parses the command line, asks the runner (conform_runner.c) to discover the plugin and run
 * the checks, and prints each verdict as text or JSON. See conform.h for the kit's layers.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "conform.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void repro(const cf_options *opt, const char *name, char *buf, size_t cap) {
    /* Quoted for the shell when the path needs it. */
    int plain = strpbrk(opt->path, " \t'\"$`\\;&|<>()*?[]{}~!#") == NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", plain ? "" : "'", opt->path, plain ? "" : "'");
    snprintf(buf, cap, "lamina conform %s --seed %llu --filter %s%s%s%s%s", path,
             (unsigned long long)opt->seed, name, opt->attrs ? " --attrs '" : "",
             opt->attrs ? opt->attrs : "", opt->attrs ? "'" : "",
             strcmp(opt->backend, "cpu") != 0 ? " --backend " : "");
    if (strcmp(opt->backend, "cpu") != 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s", opt->backend);
    }
    for (uint32_t i = 0; i < opt->n_shapes; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, " --shape '%s'", opt->shape_text[i]);
    }
    if (opt->n_inputs > 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, " --inputs %u", opt->n_inputs);
    }
}

/* "(2,3,8,8)", "2, 3" or "(3,)" into *s; 0, or -1 when it is not a shape. */
static int parse_shape(const char *text, lam_shape *s) {
    memset(s, 0, sizeof *s);
    const char *p = text;
    while (*p == ' ') {
        p++;
    }
    int paren = *p == '(';
    p += paren;
    for (;;) {
        while (*p == ' ') {
            p++;
        }
        if (*p == ')' || *p == '\0') {
            break;
        }
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno != 0 || v < 0 || s->ndim >= LAM_MAX_DIMS) {
            return -1;
        }
        s->dims[s->ndim++] = v;
        p = end;
        while (*p == ' ') {
            p++;
        }
        if (*p == ',') {
            p++;
        } else if (*p != ')' && *p != '\0') {
            return -1;
        }
    }
    if (paren != (*p == ')')) {
        return -1;
    }
    p += paren;
    while (*p == ' ') {
        p++;
    }
    return *p == '\0' ? 0 : -1;
}

static const char *outcome_word(int o) {
    return o == CF_PASS ? "pass" : o == CF_SKIP ? "skip" : "fail";
}

static void usage_conform(FILE *f) {
    fprintf(f, "usage: lamina conform PLUGIN.so [--backend all|cpu|vulkan|NAME[,NAME...]]\n"
               "                      [--seed N] [--filter SUBSTR] [--format text|json]\n"
               "                      [--attrs \"name=value, ...\"] [--timeout SECONDS]\n"
               "                      [--shape \"(2,3,8,8)\"]... [--inputs N]\n"
               "                      [--failalloc PATH/liblamina_failalloc.so]\n\n"
               "Runs the conformance checks of a layer or backend plugin, each in its own\n"
               "process; prints pass/fail/skip per check and, for each failure, what was\n"
               "expected and found and a command that reproduces it. Exit status 1 when a\n"
               "check fails, 2 on a usage error.\n\n"
               "Input shapes: --shape gives the input shape (once per input of a layer of\n"
               "several inputs); without it the kit tries (2, F) for each integer F among the\n"
               "attribute values, then (2, 3), (2, 5), (2, 4), (2, 2), (2, 1), (2, 8), (2, 16),\n"
               "(F), (2, 3, 4), (2, 3, 4, 5), and uses the first one forward accepts. --inputs N\n"
               "sets a layer's number of inputs; without it 1, 2, then 3 are tried.\n"
               "Temporary files go to $TMPDIR (default /tmp).\n");
}

static int parse_args(int argc, char **argv, cf_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->backend = "cpu";
    opt->timeout_s = 120;
    opt->argc = argc;
    opt->argv = argv;
    const char *fmt = "text";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage_conform(stdout);
            exit(0);
        } else if (a[0] == '-' && a[1] == '-' && v == NULL) {
            fprintf(stderr, "lamina conform: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--backend") == 0) {
            opt->backend = v;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            opt->seed = strtoull(v, &end, 10);
            if (*v == '\0' || *end != '\0' || errno != 0) {
                fprintf(stderr, "lamina conform: --seed wants an integer, got '%s'\n", v);
                return -1;
            }
            i++;
        } else if (strcmp(a, "--filter") == 0) {
            opt->filter = v;
            i++;
        } else if (strcmp(a, "--format") == 0) {
            fmt = v;
            i++;
        } else if (strcmp(a, "--attrs") == 0) {
            opt->attrs = v;
            i++;
        } else if (strcmp(a, "--shape") == 0) {
            if (opt->n_shapes >= CF_MAX_INPUTS ||
                parse_shape(v, &opt->shapes[opt->n_shapes]) != 0) {
                fprintf(stderr,
                        "lamina conform: --shape wants a shape such as \"(2,3,8,8)\" (at most "
                        "%d, one per input), got '%s'\n",
                        CF_MAX_INPUTS, v);
                return -1;
            }
            opt->shape_text[opt->n_shapes++] = v;
            i++;
        } else if (strcmp(a, "--inputs") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > CF_MAX_INPUTS) {
                fprintf(stderr, "lamina conform: --inputs wants 1 to %d, got '%s'\n", CF_MAX_INPUTS,
                        v);
                return -1;
            }
            opt->n_inputs = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--failalloc") == 0) {
            opt->failalloc = v;
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            opt->timeout_s = (unsigned)strtoul(v, NULL, 10);
            if (opt->timeout_s == 0) {
                opt->timeout_s = 120;
            }
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "lamina conform: unknown option '%s'\n", a);
            return -1;
        } else if (opt->path == NULL) {
            opt->path = a;
        } else {
            fprintf(stderr, "lamina conform: one plugin at a time ('%s' and '%s')\n", opt->path, a);
            return -1;
        }
    }
    if (strcmp(fmt, "json") == 0) {
        opt->json = 1;
    } else if (strcmp(fmt, "text") != 0) {
        fprintf(stderr, "lamina conform: --format is text or json, got '%s'\n", fmt);
        return -1;
    }
    if (opt->path == NULL) {
        fprintf(stderr, "lamina conform: which plugin? (a path to a .so file)\n");
        return -1;
    }
    if (opt->n_inputs > 0 && opt->n_shapes > 1 && opt->n_shapes != opt->n_inputs) {
        fprintf(stderr, "lamina conform: %u --shape options for --inputs %u\n", opt->n_shapes,
                opt->n_inputs);
        return -1;
    }
    return 0;
}

/* What the report function keeps between checks. */
typedef struct report {
    const cf_options *opt;
    json_t *checks;
    int passed, failed, skipped;
} report;

static void report_check(void *user, const char *name, const cf_result *r) {
    report *rp = user;
    const cf_options *opt = rp->opt;
    char rep[8800];
    repro(opt, name, rep, sizeof rep);
    if (r->outcome == CF_FAIL) {
        rp->failed++;
    } else if (r->outcome == CF_SKIP) {
        rp->skipped++;
    } else {
        rp->passed++;
    }
    if (opt->json) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "status", json_string(outcome_word(r->outcome)));
        json_object_set_new(o, "message", json_string(r->message));
        if (r->outcome == CF_FAIL) {
            json_object_set_new(o, "expected", json_string(r->expected));
            json_object_set_new(o, "found", json_string(r->found));
            json_object_set_new(o, "repro", json_string(rep));
        }
        json_array_append_new(rp->checks, o);
        return;
    }
    const char *word = r->outcome == CF_PASS ? "PASS" : r->outcome == CF_SKIP ? "SKIP" : "FAIL";
    printf("%s %-34s %s%s\n", word, name, r->outcome == CF_SKIP ? "skip: " : "", r->message);
    if (r->outcome == CF_FAIL) {
        if (r->expected[0]) {
            printf("       expected: %s\n", r->expected);
        }
        if (r->found[0]) {
            printf("       found:    %s\n", r->found);
        }
        printf("       repro:    %s\n", rep);
    }
    fflush(stdout);
}

int cmd_conform(int argc, char **argv) {
    /* The kit judges backends under full validation (LAMINA_VALIDATION=1, README), where every
     * invalid call must be answered with an error: set before any device is opened. */
    setenv("LAMINA_VALIDATION", "1", 1);
    cf_options opt;
    if (parse_args(argc, argv, &opt) != 0) {
        usage_conform(stderr);
        return 2;
    }
    if (access(opt.path, R_OK) != 0) {
        fprintf(stderr, "lamina conform: %s: %s\n", opt.path, strerror(errno));
        return 2;
    }
    /* A bare file name names the file here: dlopen would search the library path instead. */
    static char here[4200];
    if (strchr(opt.path, '/') == NULL) {
        snprintf(here, sizeof here, "./%s", opt.path);
        opt.path = here;
    }
    static cf_plugin plugin; /* the checks point into it */
    cf_result disc;
    if (cf_discover(&opt, &plugin, &disc) != 0) {
        fprintf(stderr, "lamina conform: out of memory\n");
        return 2;
    }
    report rp = {.opt = &opt, .checks = json_array()};
    if (!opt.json) {
        printf("lamina conform %s (seed %llu, backend %s)\n", opt.path,
               (unsigned long long)opt.seed, opt.backend);
        if (disc.outcome == CF_FAIL) {
            printf("  discovery: %s\n", disc.message);
        }
        if (plugin.have_record) {
            printf("  registers: %s %s\n", plugin.kind, plugin.names[0] ? plugin.names : "-");
        }
    }
    if (cf_run_checks(&opt, &plugin, report_check, &rp) != 0) {
        json_decref(rp.checks);
        fprintf(stderr, "lamina conform: out of memory\n");
        return 2;
    }
    if (opt.json) {
        json_t *root = json_object();
        json_object_set_new(root, "plugin", json_string(opt.path));
        json_object_set_new(root, "seed", json_integer((json_int_t)opt.seed));
        json_object_set_new(root, "backend", json_string(opt.backend));
        json_object_set_new(root, "kind", json_string(plugin.kind));
        json_object_set_new(root, "names", json_string(plugin.names));
        if (disc.outcome == CF_FAIL) {
            json_object_set_new(root, "discovery", json_string(disc.message));
        }
        json_object_set_new(root, "checks", rp.checks);
        json_t *sum = json_object();
        json_object_set_new(sum, "passed", json_integer(rp.passed));
        json_object_set_new(sum, "failed", json_integer(rp.failed));
        json_object_set_new(sum, "skipped", json_integer(rp.skipped));
        json_object_set_new(root, "summary", sum);
        json_object_set_new(root, "ok", json_boolean(rp.failed == 0));
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text != NULL) {
            printf("%s\n", text);
            free(text);
        }
        json_decref(root);
    } else {
        json_decref(rp.checks);
        printf("%d checks: %d passed, %d failed, %d skipped\n", rp.passed + rp.failed + rp.skipped,
               rp.passed, rp.failed, rp.skipped);
    }
    return rp.failed ? 1 : 0;
}
