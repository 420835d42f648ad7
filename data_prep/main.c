/* semaim-prep: see data_prep/README.md. All of the tool lives in build/libprep.a. */
#include "prep.h"

int main(int argc, char **argv) { return prep_main(argc, argv); }
