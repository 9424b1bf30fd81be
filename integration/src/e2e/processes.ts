import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";

/**
 * A TCP port free on loopback right now (the OS picks it).
 *
 * @returns the port
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * Two consecutive free loopback ports, `port` and `port + 1` (a private Kafka
 * broker listens on both: clients and its KRaft controller).
 *
 * @returns the lower port
 */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port < 65535 && (await portFree(port + 1))) return port;
  }
  throw new Error("no two consecutive free ports on 127.0.0.1");
}

/**
 * Resolves with the exit code (null after a signal) once the child exited.
 *
 * @param child - a spawned process
 * @returns its exit code
 */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/**
 * Whether a process id belongs to a live process (a zombie counts as gone).
 *
 * @param pid - the process id
 * @returns true while it runs
 */
export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
