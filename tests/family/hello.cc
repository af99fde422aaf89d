// A dynamically linked C++ program: iostreams and std::string (libstdc++) and an
// exception thrown and caught (the unwinder in libgcc_s).
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

int main() {
    std::vector<std::string> words{"hello", "from", "C++"};
    std::string line;
    for (const auto &w : words) line += (line.empty() ? "" : " ") + w;
    try {
        throw std::runtime_error("exception caught");
    } catch (const std::exception &e) {
        std::cout << line << ", " << e.what() << std::endl;
    }
    return 0;
}
