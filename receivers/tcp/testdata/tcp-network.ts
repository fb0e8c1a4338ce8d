/**
 * Test support for the tcp receiver's tests: a network namespace with only
 * `lo` (no route anywhere else), one SYN retry, and SYNs to one port dropped
 * by nft; and Python clients in it that connect when told to.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Nothing listens here in the namespace: connects are refused. */
export const CLOSED_PORT = 1;
/** SYNs to this port are dropped in the namespace: connects time out. */
export const DROPPED_PORT = 9;
/** Addresses without a route in the namespace: connect() fails before any SYN. */
export const UNROUTED_V4 = ['10.1.2.1', '10.1.2.2', '10.1.2.3'];
export const UNROUTED_V6 = '2001:db8::1';
const PYTHON = '/usr/bin/python3';

/**
 * Python in the namespace: prints "ready", waits for go(), then makes `count`
 * connects (blocking unless told) to host:port (to a listener of its own with `listen`) and
 * reports how each ended, by errno name or "ok".
 */
const CLIENT = `
import errno, json, select, socket, sys
host, port, count, listen, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "listen", sys.argv[5]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
listener = None
if listen:
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
print("ready", flush=True)
sys.stdin.read(1)
outcomes = {}
for _ in range(count):
    client = socket.socket(family, socket.SOCK_STREAM)
    if mode == "reconnect":
        # Non-blocking, and the outcome from calling connect() again once the socket is writable.
        client.setblocking(False)
        client.connect_ex((host, port))
        select.select([], [client], [], 30)
        code = client.connect_ex((host, port))
        outcome = errno.errorcode[code] if code else "ok"
    else:
        if mode == "nonblocking":
            client.settimeout(30)  # connect() returns EINPROGRESS and Python polls for the outcome
        try:
            client.connect((host, port))
            outcome = "ok"
            if listener:
                listener.accept()[0].close()
        except OSError as error:
            outcome = errno.errorcode[error.errno]
    client.close()
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(json.dumps(outcomes), flush=True)
`;

export interface Client {
  pid: number;
  comm: string;
  /** Lets it connect; resolves with its outcomes once it exited. */
  go: () => Promise<Record<string, number>>;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed: ${result.stderr}${result.error ?? ''}`);
}

export class TcpNamespace {
  /** Clients not yet stopped: a test that fails before letting them connect must not leave them waiting. */
  private readonly clients = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** `name` must be unique on the machine (include the receiver's name and the test's pid). */
  static create(name: string): TcpNamespace {
    run('ip', ['netns', 'add', name]);
    const network = new TcpNamespace(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    // One retry: SYN, retransmits, ETIMEDOUT after about 3 s.
    run('ip', ['netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=1']);
    run('ip', ['netns', 'exec', name, 'nft', `add table inet drop_syns; add chain inet drop_syns input { type filter hook input priority 0; }; add rule inet drop_syns input tcp dport ${DROPPED_PORT} drop`]);
    return network;
  }

  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.name]);
  }

  /** Starts a client that, once told to go, makes `count` connects to host:port (to a listener of its own with 'listen'). */
  async startClient(host: string, port: number | 'listen', count: number, mode: 'blocking' | 'nonblocking' | 'reconnect' = 'blocking'): Promise<Client> {
    const args = ['netns', 'exec', this.name, PYTHON, '-c', CLIENT, host, String(port === 'listen' ? 0 : port), String(count), port === 'listen' ? 'listen' : '-', mode];
    // `ip netns exec` execs the command in place: the pid is python's.
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.clients.add(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', () => output.includes('ready\n') && resolve());
      child.once('exit', (code) => reject(new Error(`client exited with ${code} before it was ready`)));
    });
    return {
      pid: child.pid!,
      comm: readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim(),
      go: async () => {
        child.stdin!.end('g');
        assert.equal(await exited, 0, `client ${host} ${port} failed`);
        return JSON.parse(output.split('\n')[1]) as Record<string, number>;
      },
    };
  }

  /** Kills the clients still running and waits for them to exit. */
  async stopClients(): Promise<void> {
    const running = [...this.clients].filter((child) => child.exitCode === null && child.signalCode === null);
    const exited = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of running) child.kill();
    await Promise.all(exited);
    this.clients.clear();
  }
}
