/**
 * Runs the migration machine (machine.ts) for one device with its I/O passed in: CWMP reads and
 * writes (through the interworking layer's DeviceAccess), a USP Get to the native agent over the
 * operator's broker, the handover. An abort signal (the device rebooted, the proxy stops) ends
 * the step in progress as a failure, which rolls back.
 */
import { advance, begin, interrupt, type MigrationState, type StepName, type StepResult } from './machine.js';
import { ENABLE_PARAMS, type MigrationTarget, namesToSave, restrictTo, settingsFor } from './plan.js';

export interface MigrationPorts {
  /** GetParameterValues of those of `names` the device lists (the others are left out of the answer). */
  readCwmp(names: readonly string[]): Promise<Record<string, string>>;
  /** One SetParameterValues; rejects (with the CWMP fault) when the device refuses it. */
  writeCwmp(values: Record<string, string>): Promise<void>;
  /** A USP Get sent to the native agent as the operator's controller; rejects on an Error or no answer in time. */
  nativeGet(nativeEndpointId: string, paths: readonly string[], timeoutMs: number): Promise<Record<string, string>>;
  /** Announces the handover and makes the proxied agent quiet for the device (service.ts). */
  handover(nativeEndpointId: string): Promise<void>;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  now(): Date;
}

export interface RunnerOptions {
  target: MigrationTarget;
  /** Parameters compared between the native agent and CWMP (migration.verifyPaths). */
  verifyPaths: readonly string[];
  /** How long the native agent has to answer after it was enabled (migration.appearTimeoutMs). */
  appearTimeoutMs: number;
  /** Between two Gets while waiting for it to appear. */
  pollIntervalMs: number;
  /** One USP request's deadline. */
  requestTimeoutMs: number;
}

const EID = 'Device.LocalAgent.EndpointID';

/** Runs every step; never rejects: the outcome is in the returned state. `onStep` sees each new state. */
export async function runMigration(
  ports: MigrationPorts,
  o: RunnerOptions,
  signal: AbortSignal,
  onStep: (s: MigrationState) => void = () => undefined,
): Promise<MigrationState> {
  let s = begin('', ports.now());
  let saved: Record<string, string> = {};
  let settings: Record<string, string> = {};
  onStep(s);
  const steps: Record<Exclude<StepName, 'rollback'>, () => Promise<StepResult>> = {
    'read-settings': async () => {
      const eid = (await ports.readCwmp([EID]))[EID]?.trim() ?? '';
      if (!eid) return { ok: false, reason: 'the device has no Device.LocalAgent.EndpointID: no USP Agent to migrate to' };
      s = { ...s, nativeEndpointId: eid };
      const names = namesToSave(o.target, eid);
      saved = await ports.readCwmp(names);
      const r = restrictTo(settingsFor(o.target, eid), new Set(Object.keys(saved)));
      if ('missing' in r) return { ok: false, reason: `the device does not list ${r.missing.join(', ')}` };
      settings = r.values;
      return { ok: true, detail: `saved ${Object.keys(saved).length} values` };
    },
    configure: async () => {
      await ports.writeCwmp(settings);
      return { ok: true, detail: `${Object.keys(settings).length} values set` };
    },
    enable: async () => {
      await ports.writeCwmp(Object.fromEntries(ENABLE_PARAMS.filter((n) => n in saved).map((n) => [n, 'true'])));
      return { ok: true };
    },
    'await-agent': async () => {
      // Proof that the agent is on the broker under its Endpoint ID and answers its controller. A
      // Get sent before the agent subscribed is lost (MQTT keeps nothing for it): one Get per
      // poll interval, each waiting at most that long, so a late start costs one interval.
      const deadline = ports.now().getTime() + o.appearTimeoutMs;
      let last = '';
      let tries = 0;
      for (;;) {
        tries++;
        const sent = ports.now().getTime();
        const left = deadline - sent;
        try {
          const got = await ports.nativeGet(s.nativeEndpointId, [EID], Math.max(1, Math.min(o.requestTimeoutMs, o.pollIntervalMs, left)));
          if (got[EID] !== undefined && got[EID] !== s.nativeEndpointId) return { ok: false, reason: `the agent answered with EndpointID ${got[EID]}` };
          return { ok: true, detail: `answered after ${tries} Get(s)` };
        } catch (e) {
          last = (e as Error).message;
        }
        const next = sent + o.pollIntervalMs;
        if (next >= deadline) break;
        const wait = next - ports.now().getTime();
        if (wait > 0) await ports.sleep(wait, signal);
      }
      return { ok: false, reason: `the native agent ${s.nativeEndpointId} did not answer within ${o.appearTimeoutMs} ms (${last})` };
    },
    verify: async () => {
      const [usp, cwmp] = await Promise.all([ports.nativeGet(s.nativeEndpointId, o.verifyPaths, o.requestTimeoutMs), ports.readCwmp(o.verifyPaths)]);
      const diff = o.verifyPaths.filter((p) => usp[p] !== cwmp[p]);
      if (diff.length > 0)
        return {
          ok: false,
          reason: `values differ: ${diff.map((p) => `${p} usp=${JSON.stringify(usp[p] ?? null)} cwmp=${JSON.stringify(cwmp[p] ?? null)}`).join('; ')}`,
        };
      return { ok: true, detail: `${o.verifyPaths.length} values match` };
    },
    handover: async () => {
      await ports.handover(s.nativeEndpointId);
      return { ok: true };
    },
  };
  while (s.phase === 'running' && s.step !== null) {
    const step = s.step;
    const t0 = ports.now();
    if (step === 'rollback') {
      let r: StepResult;
      try {
        await ports.writeCwmp(saved);
        r = { ok: true, detail: `${Object.keys(saved).length} values restored` };
      } catch (e) {
        r = { ok: false, reason: (e as Error).message };
      }
      s = advance(s, r, t0, ports.now());
    } else if (signal.aborted) {
      s = interrupt(s, String(signal.reason ?? 'aborted'), t0, ports.now());
    } else {
      const r = await raceAbort(steps[step](), signal).catch((e: Error): StepResult => ({ ok: false, reason: e.message }));
      s = 'aborted' in r ? interrupt(s, r.aborted, t0, ports.now()) : advance(s, r, t0, ports.now());
    }
    onStep(s);
  }
  return s;
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T | { aborted: string }> {
  if (signal.aborted) return Promise.resolve({ aborted: String(signal.reason) });
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve({ aborted: String(signal.reason) });
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
