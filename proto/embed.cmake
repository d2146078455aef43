# Writes INPUT's bytes into OUTPUT as `const unsigned char SYMBOL[]` and
# `const size_t SYMBOL_len`.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR byte_len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE ${OUTPUT}
     "#include <stddef.h>\n"
     "const unsigned char ${SYMBOL}[] = {\n${body}\n};\n"
     "const size_t ${SYMBOL}_len = ${byte_len};\n")
