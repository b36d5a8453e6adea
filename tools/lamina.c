/* lamina: the command-line front end. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_to_stderr(lam_log_level level, const char *message, void *user) {
    (void)user;
    static const char *names[] = {"", "error", "warn", "info", "debug"};
    fprintf(stderr, "lamina: %s: %s\n", (level >= 1 && level <= 4) ? names[level] : "log", message);
}

static void setup_logging(void) {
    const char *v = getenv("LAMINA_LOG");
    lam_log_level max = LAM_LOG_WARN;
    if (v != NULL) {
        if (strcmp(v, "debug") == 0) {
            max = LAM_LOG_DEBUG;
        } else if (strcmp(v, "info") == 0) {
            max = LAM_LOG_INFO;
        } else if (strcmp(v, "error") == 0) {
            max = LAM_LOG_ERROR;
        }
    }
    lam_log_set_callback(log_to_stderr, NULL, max);
}

static const char *decision_name(lam_plugin_decision d) {
    switch (d) {
    case LAM_PLUGIN_LOADED:
        return "loaded";
    case LAM_PLUGIN_SKIPPED:
        return "skipped";
    case LAM_PLUGIN_REFUSED:
        return "refused";
    default:
        return "?";
    }
}

/* Prints the devices of backend i (probed). */
static void print_devices(size_t i, const char *name, uint32_t nd, const char *why) {
    if (nd == 0) {
        printf("  %s: no device: %s\n", name, why);
        return;
    }
    for (uint32_t d = 0; d < nd; d++) {
        lam_device_info info = LAM_DEVICE_INFO_INIT;
        if (lam_backend_device_info(i, d, &info) != LAM_OK) {
            printf("  %s(%u): %s\n", name, d, lam_last_error());
            continue;
        }
        /* Bounded reads: a device_info that left a field without its NUL must not make
         * us read past it (the library terminates them too). */
        printf("  %s(%u): %.*s", name, d, (int)strnlen(info.name, sizeof info.name), info.name);
        if (info.compute_units) {
            printf(", %u compute units", info.compute_units);
        }
        if (info.memory_bytes) {
            printf(", %.1f GiB", (double)info.memory_bytes / (1024.0 * 1024.0 * 1024.0));
        }
        printf("\n      driver: %.*s\n", (int)strnlen(info.driver, sizeof info.driver),
               info.driver);
        if (info.details[0]) {
            printf("      %.*s\n", (int)strnlen(info.details, sizeof info.details), info.details);
        }
    }
}

/*
 * `lamina plugins [--devices]`. By default no backend is probed beyond the default context's
 * (what any program using it pays): the others are listed as not probed, since probing, e.g.,
 * Vulkan loads the Vulkan loader and every installed driver. --devices probes every backend.
 */
static int cmd_plugins(int argc, char **argv) {
    int devices = 0;
    for (int a = 2; a < argc; a++) {
        if (strcmp(argv[a], "--devices") == 0) {
            devices = 1;
        } else {
            fprintf(stderr,
                    "lamina plugins: unknown option '%s' (usage: lamina plugins "
                    "[--devices])\n",
                    argv[a]);
            return 2;
        }
    }
    /* The default context first: its backend is probed as in any program that uses it. */
    lam_ctx *ctx = NULL;
    const lam_status ctx_st = lam_ctx_default(&ctx);
    char ctx_error[512] = "";
    if (ctx_st != LAM_OK) {
        snprintf(ctx_error, sizeof ctx_error, "%s", lam_last_error());
    }
    size_t n = devices ? lam_plugin_report_count() : lam_plugin_report_peek_count();
    printf("Plugins (search path: %s%s%s)\n",
           getenv("LAMINA_PLUGIN_PATH") ? getenv("LAMINA_PLUGIN_PATH") : "",
           getenv("LAMINA_PLUGIN_PATH") ? ":" : "", lam_builtin_plugin_dir());
    printf("%-32s %-8s %-14s %-8s %-5s %-8s %s\n", "FILE", "KIND", "NAME", "VERSION", "ABI",
           "STATUS", "REASON");
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        if ((devices ? lam_plugin_report_get(i, &r) : lam_plugin_report_peek(i, &r)) != LAM_OK) {
            continue;
        }
        const char *base = strrchr(r.path, '/');
        base = base ? base + 1 : r.path;
        char abi[16] = "-";
        if (r.plugin_abi != 0) {
            snprintf(abi, sizeof abi, "%u.%u", LAM_VERSION_MAJOR(r.plugin_abi),
                     LAM_VERSION_MINOR(r.plugin_abi));
        }
        printf("%-32s %-8s %-14s %-8s %-5s %-8s %s%s%s\n", base, r.kind, r.names[0] ? r.names : "-",
               r.version[0] ? r.version : "-", abi, decision_name(r.decision),
               lam_plugin_reason_string(r.reason), r.message[0] ? ": " : "", r.message);
        if (r.decision == LAM_PLUGIN_REFUSED) {
            refused++;
        }
    }
    if (n == 0) {
        printf("(no plugin files found)\n");
    }
    printf("\nBackends\n");
    size_t nb = lam_backend_count();
    int unprobed = 0;
    for (size_t i = 0; i < nb; i++) {
        const char *name, *why;
        uint32_t nd;
        int probed = 1;
        lam_status st = devices ? lam_backend_get(i, &name, &nd, &why)
                                : lam_backend_peek(i, &name, &probed, &nd, &why);
        if (st != LAM_OK) {
            continue;
        }
        if (!probed) {
            printf("  %s: not probed\n", name);
            unprobed++;
            continue;
        }
        print_devices(i, name, nd, why);
    }
    if (nb == 0) {
        printf("  (none)\n");
    }
    if (unprobed > 0) {
        printf("  (`lamina plugins --devices` probes every backend and lists its devices)\n");
    }
    if (ctx_st == LAM_OK) {
        printf("\nDefault context (LAMINA_BACKEND=%s): %s\n",
               getenv("LAMINA_BACKEND") ? getenv("LAMINA_BACKEND") : "cpu", lam_ctx_name(ctx));
    } else {
        printf("\nDefault context: unavailable: %s\n", ctx_error);
    }
    char comm[64], why[2048];
    const char *asked =
        getenv("LAMINA_COMM") && getenv("LAMINA_COMM")[0] ? getenv("LAMINA_COMM") : "auto";
    if (lam_comm_choose(NULL, comm, sizeof comm, why, sizeof why) == LAM_OK) {
        printf("Communicator (LAMINA_COMM=%s): %s: %s\n", asked, comm, why);
    } else {
        printf("Communicator (LAMINA_COMM=%s): unavailable: %s\n", asked, why);
    }
    lam_shutdown();
    return refused ? 1 : 0;
}

static int cmd_abi(int argc, char **argv) {
    uint64_t have = lam_abi_fingerprint();
    if (argc > 2 && strcmp(argv[2], "--check") == 0) {
        if (have != LAM_ABI_FINGERPRINT) {
            fprintf(stderr,
                    "lamina abi: ABI layout changed, headers say LAM_ABI_FINGERPRINT "
                    "0x%016llxULL but the layout hashes to 0x%016llxULL; bump the ABI version "
                    "(a new minor for appended fields) and set the new fingerprint in "
                    "sdk/include/lamina/plugin.h\n",
                    (unsigned long long)LAM_ABI_FINGERPRINT, (unsigned long long)have);
            return 1;
        }
        return 0;
    }
    printf("ABI %u.%u\nLAM_ABI_FINGERPRINT (header) 0x%016llxULL\nlayout fingerprint          "
           "0x%016llxULL\n",
           LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR, (unsigned long long)LAM_ABI_FINGERPRINT,
           (unsigned long long)have);
    return have == LAM_ABI_FINGERPRINT ? 0 : 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: lamina <command>\n\n"
               "commands:\n"
               "  plugins    list every plugin file found, what was loaded or refused and why,\n"
               "             and the default backend's devices (exit status 1 if any was\n"
               "             refused); --devices probes every backend and lists its devices\n"
               "  train      train the chapter's MLP and report its test accuracy\n"
               "             (lamina train --help for its options)\n"
               "  abi        print the plugin ABI version and layout fingerprint\n"
               "  conform    check that a plugin keeps the contract (lamina conform --help)\n"
               "  inspect    lamina inspect FILE: each tensor of a safetensors file\n"
               "             (name, dtype, shape, bytes, min/max/mean) and its metadata;\n"
               "             lamina inspect --verify FILE: every byte against its checksum;\n"
               "             lamina inspect --model mlp|cnn [FILE]: the model's layer table\n"
               "  help       this text\n\n"
               "environment: LAMINA_BACKEND (cpu | <name>[:<device>] | auto), LAMINA_PLUGIN_PATH,\n"
               "             LAMINA_LOG (error | warn | info | debug), LAMINA_NUM_THREADS\n");
}

int main(int argc, char **argv) {
    setup_logging();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "plugins") == 0) {
        return cmd_plugins(argc, argv);
    }
    if (strcmp(argv[1], "train") == 0) {
        return cmd_train(argc, argv);
    }
    if (strcmp(argv[1], "abi") == 0) {
        return cmd_abi(argc, argv);
    }
    if (strcmp(argv[1], "conform") == 0) {
        return cmd_conform(argc, argv);
    }
    if (strcmp(argv[1], "inspect") == 0) {
        return cmd_inspect(argc, argv);
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "lamina: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
