// A process with known functions for the symbolizer's tests. It stays alive
// until killed, calling them now and then; tests look their addresses up with
// nm and check the names, files and lines the symbolizer gives back.
#include <unistd.h>

int symbolizer_leaf(int x) {
  return x * 3 + 1;
}

int symbolizer_caller(int x) {
  return symbolizer_leaf(x) + 2;
}

int main(void) {
  volatile int sink = 0;
  for (;;) {
    sink += symbolizer_caller(sink) + getpid();
    sleep(1);
  }
}
