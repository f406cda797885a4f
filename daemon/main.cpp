// goroscope: an eBPF runtime monitor for live Go processes.
#include <CLI/CLI.hpp>

#include <iostream>

#include "daemon/inspect_command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "goroscope: where goroutines are born, how long they live, where they block,\n"
      "which timers leak and where memory is allocated, per call site, in any running\n"
      "Go program, without restarting or rebuilding it."};
  app.set_version_flag("--version", std::string("goroscope ") + GOROSCOPE_VERSION);
  app.require_subcommand(1);
  app.footer(
      "EXAMPLES:\n"
      "  goroscope inspect ./server                 what goroscope can see in a Go binary\n"
      "  goroscope inspect --pid 4242 --format json the same for a running process\n"
      "  echo 0x4a1b2c | goroscope inspect ./server --addr2line\n");

  goroscope::InspectOptions inspect;
  CLI::App* ins = app.add_subcommand(
      "inspect", "Show a Go binary's version, module, probe points, struct offsets and warnings");
  ins->add_option("binary", inspect.binary, "Go executable to inspect");
  ins->add_option("--pid,-p", inspect.pid, "inspect the executable of this running process")->check(CLI::PositiveNumber);
  ins->add_option("--format,-f", inspect.format, "output format")->check(CLI::IsMember({"text", "json"}));
  ins->add_flag("--addr2line", inspect.addr2line,
                "read hex addresses on stdin and print function and file:line for each, like `go tool addr2line`");
  ins->footer(
      "EXAMPLES:\n"
      "  goroscope inspect /usr/local/bin/myservice\n"
      "  goroscope inspect --pid $(pidof myservice) --format json | jq .offsets\n"
      "  printf '0x4a1b2c\\n0x4a1b40\\n' | goroscope inspect ./myservice --addr2line\n"
      "\n"
      "Works on stripped (-s -w) and PIE binaries: names come from the Go runtime's\n"
      "own pclntab, struct offsets from DWARF or, without it, from goroscope's\n"
      "per-Go-version tables (the output says which).");
  ins->callback([&] {
    if (inspect.binary.empty() == (inspect.pid == 0))
      throw CLI::ValidationError("inspect", "give either a BINARY or --pid PID");
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (ins->parsed()) return goroscope::run_inspect(inspect);
  } catch (const std::exception& e) {
    std::cerr << "goroscope: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
