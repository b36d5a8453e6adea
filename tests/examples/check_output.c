/*
 * check_output EXPECTED PROGRAM: runs PROGRAM, compares its standard output with the file
 * EXPECTED line by line. Words that are numbers compare within 1e-3 relative (2e-4 absolute),
 * so last-bit differences between BLAS kernels do not matter; everything else compares exactly.
 * Prints the first difference and exits 1 on a mismatch.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *slurp(FILE *f) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (buf) {
        buf[n] = '\0';
    }
    return buf;
}

static int is_number(const char *w, double *v) {
    char *end;
    *v = strtod(w, &end);
    return end != w && *end == '\0';
}

/* Compares one line word by word. */
static int same_line(char *a, char *b) {
    char *sa, *sb;
    char *wa = strtok_r(a, " \t", &sa), *wb = strtok_r(b, " \t", &sb);
    while (wa && wb) {
        double x, y;
        if (is_number(wa, &x) && is_number(wb, &y)) {
            if (fabs(x - y) > 2e-4 + 1e-3 * fabs(y)) {
                return 0;
            }
        } else if (strcmp(wa, wb) != 0) {
            return 0;
        }
        wa = strtok_r(NULL, " \t", &sa);
        wb = strtok_r(NULL, " \t", &sb);
    }
    return wa == NULL && wb == NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: check_output EXPECTED PROGRAM\n");
        return 2;
    }
    FILE *ef = fopen(argv[1], "r");
    if (!ef) {
        perror(argv[1]);
        return 2;
    }
    char *expected = slurp(ef);
    fclose(ef);
    FILE *p = popen(argv[2], "r");
    if (!p) {
        perror(argv[2]);
        return 2;
    }
    char *got = slurp(p);
    int status = pclose(p);
    if (!expected || !got) {
        fprintf(stderr, "check_output: out of memory\n");
        return 2;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("%s", got);
        fprintf(stderr, "check_output: %s exited with status %d\n", argv[2], status);
        return 1;
    }
    char *se, *sg;
    char *le = strtok_r(expected, "\n", &se), *lg = strtok_r(got, "\n", &sg);
    int line = 1;
    while (le || lg) {
        char ce[4096], cg[4096];
        snprintf(ce, sizeof ce, "%s", le ? le : "(end of output)");
        snprintf(cg, sizeof cg, "%s", lg ? lg : "(end of output)");
        if (!le || !lg || !same_line(le, lg)) {
            printf("line %d differs\n  expected: %s\n  got:      %s\n", line, ce, cg);
            return 1;
        }
        le = strtok_r(NULL, "\n", &se);
        lg = strtok_r(NULL, "\n", &sg);
        line++;
    }
    printf("ok: %d lines match %s\n", line - 1, argv[1]);
    free(expected);
    free(got);
    return 0;
}
