/*
 * New tensors with their values set (tensor_new.c): lam_tensor_full, lam_tensor_create and
 * lam_tensor_create_dtype of lamina.h. Private to core/; nothing else is declared here.
 */
#ifndef LAMINA_CORE_TENSOR_NEW_H
#define LAMINA_CORE_TENSOR_NEW_H

#include "lamina/lamina.h"

#endif
