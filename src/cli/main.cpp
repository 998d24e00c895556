#include "cli/app.hpp"

int main(int argc, char** argv) { return dynaseal::cli::run(argc, argv); }
