# cmake -DSPV=<file.spv> -DOUT=<file.c> -DNAME=<id> -P embed_spirv.cmake
# Writes <file.c> defining `const uint32_t vk_spv_<id>[]` with the words of a SPIR-V binary
# (little-endian, as glslc writes it) and `const size_t vk_spv_<id>_bytes`. No xxd needed.
file(READ "${SPV}" hex HEX)
string(LENGTH "${hex}" len)
math(EXPR rem "${len} % 8")
if(len EQUAL 0 OR NOT rem EQUAL 0)
  message(FATAL_ERROR "embed_spirv: ${SPV} is not a SPIR-V binary (${len} hex digits)")
endif()
string(REGEX REPLACE "([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])"
  "0x\\4\\3\\2\\1u," words "${hex}")
# eight words per line
string(REGEX REPLACE "((0x[0-9a-f]+u,){8})" "\\1\n    " words "${words}")
file(WRITE "${OUT}.tmp"
"/* Generated from ${NAME}.comp by embed_spirv.cmake; do not edit. */
#include <stddef.h>
#include <stdint.h>

extern const uint32_t vk_spv_${NAME}[];
extern const size_t vk_spv_${NAME}_bytes;

const uint32_t vk_spv_${NAME}[] = {
    ${words}
};
const size_t vk_spv_${NAME}_bytes = sizeof vk_spv_${NAME};
")
file(RENAME "${OUT}.tmp" "${OUT}")
