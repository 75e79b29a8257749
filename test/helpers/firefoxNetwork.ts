/**
 * The network Firefox tests run in. Firefox gathers no usable ICE candidates in a namespace that only
 * has loopback (even two of its own peer connections decode nothing there), so scripts/test.ts runs
 * the Firefox test files in a private namespace with a veth pair and a default route: the server's
 * media sockets listen on HOST_IP, browsers reach it there, and nothing leaves the namespace.
 */
import fs from 'node:fs';
import os from 'node:os';

export const FIREFOX_NET = {
  /** veth end the server's media sockets use (RTC_LISTEN_IP and RTC_ANNOUNCED_IP). */
  hostIp: '10.213.0.1',
  peerIp: '10.213.0.2',
  prefix: 24,
} as const;

/** Shell commands (inside a fresh `unshare -n`) that make that network; nameservers fail fast instead of timing out. */
export function firefoxNetworkSetup(nameservers: string[]): string {
  const { hostIp, peerIp, prefix } = FIREFOX_NET;
  return [
    'ip link set lo up',
    'ip link add v0 type veth peer name v1',
    `ip addr add ${hostIp}/${prefix} dev v0`,
    `ip addr add ${peerIp}/${prefix} dev v1`,
    'ip link set v0 up',
    'ip link set v1 up',
    'ip route add default dev v0',
    // werift asks a public STUN server by name when it gathers: DNS must fail at once, not time out.
    ...nameservers.filter((ns) => /^\d+\.\d+\.\d+\.\d+$/.test(ns) && !ns.startsWith('127.')).map((ns) => `ip route add unreachable ${ns}/32`),
  ].join(' && ');
}

/** The nameservers of /etc/resolv.conf (firefoxNetworkSetup makes them unreachable at once). */
export function resolvConfNameservers(): string[] {
  try {
    return [...fs.readFileSync('/etc/resolv.conf', 'utf8').matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]!);
  } catch {
    return [];
  }
}

/** Throws with the way to run them when this process is not in that network (Firefox tests are never skipped). */
export function assertFirefoxNetwork(): void {
  const has = Object.values(os.networkInterfaces()).some((addrs) => addrs?.some((a) => a.address === FIREFOX_NET.hostIp));
  if (!has) {
    throw new Error(
      `Firefox e2e tests need the veth network namespace that scripts/test.ts makes (no interface has ${FIREFOX_NET.hostIp}): run them with \`npm test -- test/e2e/<file>\` as root`,
    );
  }
}
