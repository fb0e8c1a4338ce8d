// A node process (run with --perf-basic-prof) whose hot function V8 compiles
// to JIT code and lists in /tmp/perf-<pid>.map.
function hotFunctionForSymbolizer(n) {
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.sqrt(i) * (i % 7);
  return total;
}

let sink = 0;
setInterval(() => {
  for (let round = 0; round < 200; round++) sink += hotFunctionForSymbolizer(1000);
}, 10);
