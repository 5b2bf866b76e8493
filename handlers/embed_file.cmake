# Build step of handlers/CMakeLists.txt: writes a C source holding the bytes
# of a file, so the binary carries it (the OpenAPI document). With JSON=1 the
# file must parse as JSON, or the build stops here with the parser's message.
#
#   cmake -DIN=file.json -DOUT=file.c -DNAME=symbol -DHEADER=x.h [-DJSON=1] -P embed_file.cmake
#
# Defines `const unsigned char NAME[]` (the bytes plus a NUL, which NAME_len
# does not count) and `const size_t NAME_len`. OUT is only rewritten when
# its contents change.
cmake_minimum_required(VERSION 3.20)
foreach(v IN ITEMS IN OUT NAME HEADER)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "embed_file.cmake: -D${v}=... is required")
  endif()
endforeach()

if(JSON)
  file(READ "${IN}" text)
  string(JSON kind ERROR_VARIABLE err TYPE "${text}")
  if(err)
    message(FATAL_ERROR "${IN} is not valid JSON: ${err}")
  endif()
  if(NOT kind STREQUAL "OBJECT")
    message(FATAL_ERROR "${IN}: the top level must be a JSON object, not ${kind}")
  endif()
endif()

file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 row)  # CMake regexes have no {n}
string(REGEX REPLACE "(${row})" "\\1\n" bytes "${bytes}")
get_filename_component(src "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${src} by embed_file.cmake: do not edit. */\n"
  "#include \"${HEADER}\"\n\n"
  "const unsigned char ${NAME}[] = {\n${bytes}0x00\n};\n"
  "const size_t ${NAME}_len = ${len};\n")
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)  # rewrites OUT only when it changed
file(REMOVE "${OUT}.tmp")
