/*
 * cpu_dnnl_try.cpp - the one C++ function of the CPU backend: it calls a C function that uses
 * oneDNN and catches what oneDNN throws. Some of oneDNN's C entries let C++ exceptions out
 * (std::bad_alloc from a failed allocation while a primitive descriptor is made); escaping into
 * the C caller they would end the process. cpu_dnnl.c is compiled with -fexceptions so an
 * exception passes through its frames between here and oneDNN (they hold no resources: what
 * they make is kept in a state struct the caller frees). A bad_alloc inside
 * dnnl_primitive_execute never gets here: oneDNN ends the process first (see cpu_dnnl.c).
 */
/* (cpu_internal.h is C; its declaration of this function is the one below.) */

extern "C" int cpu_dnnl_try(int (*fn)(void *), void *arg) noexcept {
    try {
        return fn(arg);
    } catch (...) {
        return -1;
    }
}
