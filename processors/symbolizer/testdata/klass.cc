// A C++ process whose method the symbolizer must demangle as ns::Klass::method(int).
#include <unistd.h>

namespace ns {

class Klass {
 public:
  int method(int x);
};

__attribute__((noinline)) int Klass::method(int x) { return x + 1; }

}  // namespace ns

int main() {
  ns::Klass klass;
  volatile int sink = 0;
  for (;;) {
    sink += klass.method(sink);
    sleep(1);
  }
}
