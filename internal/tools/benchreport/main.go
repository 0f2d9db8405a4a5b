// Command benchreport turns benchmark outputs into BENCHMARKS.md: one table comparing
// each candidate figure with its baseline from the same run, as listed in
// scripts/benchrows.tsv. scripts/bench.sh runs the benchmarks and then this command.
//
//	go run ./internal/tools/benchreport [-rows scripts/benchrows.tsv] [-dir .tools/bench]
//		[-out BENCHMARKS.md] [-benchtime 1s] [-gomod go.mod] [-load-start "1.0 0.5 0.2"]
//
// Each *.txt file of -dir is the output of `go test -bench` for one package (or of
// scripts/loadbench.sh); benchmark lines are attributed to the package of the last
// "pkg:" line, or, before any, to the file's name with "__" read as "/" (load.txt:
// "load"). Rows whose benchmarks are missing read "not run".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	rows := flag.String("rows", "scripts/benchrows.tsv", "the comparisons, one a line")
	dir := flag.String("dir", ".tools/bench", "directory of benchmark outputs (*.txt)")
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	benchtime := flag.String("benchtime", "1s", "the -benchtime the outputs were made with (for the header)")
	gomod := flag.String("gomod", "go.mod", "the module's go.mod (its path is cut from package names)")
	loadStart := flag.String("load-start", "", "load averages when the benchmarks started (for the header)")
	flag.Parse()
	if err := run(*rows, *dir, *out, *benchtime, *gomod, *loadStart); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(rowsPath, dir, out, benchtime, gomod, loadStart string) error {
	f, err := os.Open(rowsPath)
	if err != nil {
		return fmt.Errorf("open the rows file: %w (run from the repository root or pass -rows)", err)
	}
	rows, err := ParseRows(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", rowsPath, err)
	}
	module, err := modulePath(gomod)
	if err != nil {
		return err
	}
	res := NewResults()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return err
	}
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		pkg := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(name), ".txt"), "__", "/")
		err = res.Parse(fh, module, pkg)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	lines := make([]Line, len(rows))
	for i, r := range rows {
		lines[i] = Evaluate(r, res)
	}
	h := Header{
		CPUs:      runtime.NumCPU(),
		CPU:       res.CPU,
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Benchtime: benchtime,
		Load:      loadAverage(),
		LoadStart: loadStart,
	}
	tmp := out + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := Write(w, h, lines); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// modulePath reads the module line of go.mod.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("open go.mod: %w (run from the repository root or pass -gomod)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// loadAverage returns the 1, 5 and 15 minute load averages of a Linux machine, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
