# Writes the bytes of IN as a C array (vigil_status_page, _len) into OUT:
# the status page of `vigil serve --metrics` ships inside the binary, so it
# works offline and never goes out of step with the endpoint it reads.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){24})" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from tools/status.html by cmake/embed.cmake. */\n"
     "#include <stddef.h>\n"
     "extern const unsigned char vigil_status_page[];\n"
     "extern const size_t vigil_status_page_len;\n"
     "const unsigned char vigil_status_page[] = {\n${body}0x00};\n"
     "const size_t vigil_status_page_len = ${len};\n")
