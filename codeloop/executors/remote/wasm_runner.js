// codeloop's Wasm sandbox: Pyodide (CPython compiled to WebAssembly) inside Deno, running codeloop's worker.
//
// Started by codeloop/executors/remote/wasm.py as
//   deno run --no-prompt --allow-read=<pyodide dir>[,<snapshot>] wasm_runner.js <pyodide dir> [<snapshot>]
// so this process can read Pyodide's own files (and the start-up snapshot) and nothing else: no network, no environment, no
// writes, no subprocesses, no FFI. Everything else arrives on stdin, as one boot message (a 4-byte
// big-endian length, then JSON {"files": [[path, text], ...], "argv": [...], "code": "..."}): the
// worker's Python modules, written into Pyodide's in-memory file system (the host's file system is
// never mounted), and the boot code, run as the worker's main program with ``sys.argv`` set.
//
// After the boot message, stdin and stdout carry the worker's frames. Python's fds 0 and 1 are wired
// to synchronous reads and writes of this process's stdin and stdout, so a worker waiting for the
// host (the next request, a tool's answer) blocks in Deno.stdin.readSync: Python in Pyodide runs on
// this one thread and can block there. The process exits with the worker's exit status.
//
// With "--make-snapshot" instead of a snapshot path, it boots Pyodide, imports the standard-library
// modules the worker uses and writes a memory snapshot of that state to stdout (for the host to keep).

const indexURL = Deno.args[0].replace(/\/?$/, "/");
const snapshot = Deno.args[1] || "";
// Standard-library modules the worker imports, loaded before a snapshot is taken.
const PRELOAD = "import ast, base64, datetime, json, struct, types, select, math, re, collections, " +
  "functools, itertools, operator, dataclasses, typing, traceback, weakref, io, contextlib, secrets";

function readExactly(n) {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = Deno.stdin.readSync(out.subarray(got));
    if (k === null || k === 0) Deno.exit(3); // the host went away before the worker started
    got += k;
  }
  return out;
}

function writeAll(file, data) {
  let done = 0;
  while (done < data.length) done += file.writeSync(data.subarray(done));
  return data.length;
}

const { loadPyodide } = await import(new URL("pyodide.mjs", "file://" + indexURL).href);
// (Emscripten would put this script's host path in $_)
const env = { HOME: "/home/pyodide", _: "/usr/bin/python3" };
const options = { indexURL, env, stdout: () => {}, stderr: () => {} };

if (snapshot === "--make-snapshot") {
  // The host keeps this memory image of a booted Pyodide and starts later sandboxes from it.
  const py = await loadPyodide({ ...options, _makeSnapshot: true });
  py.runPython(PRELOAD);
  writeAll(Deno.stdout, py.makeMemorySnapshot());
  Deno.exit(0);
}

const head = readExactly(4);
const size = new DataView(head.buffer).getUint32(0, false);
const boot = JSON.parse(new TextDecoder().decode(readExactly(size)));

const py = await loadPyodide(snapshot ? { ...options, _loadSnapshot: Deno.readFileSync(snapshot) } : options);
py.setStdin({
  read(buffer) {
    const k = Deno.stdin.readSync(buffer);
    return k === null ? 0 : k; // 0: end of file (the host closed the stream)
  },
  isatty: false,
});
py.setStdout({ write: (buffer) => writeAll(Deno.stdout, buffer), isatty: false });
py.setStderr({ write: (buffer) => writeAll(Deno.stderr, buffer), isatty: false });

for (const [path, text] of boot.files) {
  py.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
  py.FS.writeFile(path, text);
}
py.pyimport("sys").argv = py.toPy(boot.argv);

let status = 0;
try {
  py.runPython(boot.code);
} catch (err) {
  // os._exit() and sys.exit() end the Wasm program: Emscripten throws its exit status.
  if (err && typeof err.status === "number") {
    status = err.status;
  } else {
    writeAll(Deno.stderr, new TextEncoder().encode(`codeloop wasm worker failed: ${err}\n`));
    status = 1;
  }
}
Deno.exit(status);
