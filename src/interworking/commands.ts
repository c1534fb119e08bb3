/**
 * USP commands on a CWMP device (TR-181 USP commands over TR-069 RPCs): Device.Reboot(), Device.FactoryReset(),
 * Device.DeviceInfo.FirmwareImage.{i}.Download(), Device.IP.Diagnostics.IPPing() and
 * TraceRoute(). All are async in USP: the Operate answer carries a Request path and the result
 * comes as an OperationComplete Notify once the device reports back (the next BOOT Inform,
 * TransferComplete, 8 DIAGNOSTICS COMPLETE). A device that does not come back within the
 * deadline finishes with 7022 and a message saying so.
 */
import type { CallScope } from '../usp/request-scope.js';
import { randomBytes } from 'node:crypto';
import type { AcsRequest, AutonomousTransferComplete, Inform, ParameterValueStruct, TransferComplete } from '../cwmp/types.js';
import type { RpcOutcome } from '../cwmp/session.js';
import type { DeviceRecord } from '../store/types.js';
import type { CommandSchema, EventSchema, OperateOutcome, RequestContext } from '../usp/dm/types.js';
import { describeFault, uspCodeOfCwmpFault, uspErrorOfRpc } from './faults.js';

/** A command the proxy can run on a device; `requires`: supported objects that must exist for it. */
export interface OfferedCommand {
  object: string;
  command: CommandSchema;
  requires?: readonly string[];
}

/** The commands and events of a CWMP device, and running them (the backends delegate Operate here). */
export interface CommandRunner {
  commands(device: DeviceRecord): OfferedCommand[];
  events(device: DeviceRecord): { object: string; event: EventSchema }[];
  operate(ctx: RequestContext, device: DeviceRecord, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome>;
}

type Completion = { output: Record<string, string> } | { errCode: number; errMsg: string };

interface Waiter {
  match: (e: DeviceEvent) => boolean;
  resolve: (e: DeviceEvent) => void;
}

/** What the CWMP side reports about a device, as the runner needs it. */
export type DeviceEvent =
  | { kind: 'inform'; deviceKey: string; inform: Pick<Inform, 'event'> }
  | { kind: 'transferComplete'; deviceKey: string; message: TransferComplete | AutonomousTransferComplete };

export interface CommandRunnerOptions {
  /** How long a device may take to report back (reboot, download, diagnostics), ms. */
  completionTimeoutMs: number;
  /**
   * Every parameter of an object with its value, read with explicit names (the object's names are
   * learned again first: results may come as new rows, e.g. TraceRoute RouteHops).
   */
  readObject(d: DeviceRecord, object: string): Promise<ParameterValueStruct[]>;
  /** Keeps which command path a Download's CommandKey belongs to, until its TransferComplete (TransferComplete!). */
  downloadSent?(d: DeviceRecord, commandKey: string, commandPath: string): Promise<void>;
}

const IPPING_IN = ['Interface', 'ProtocolVersion', 'Host', 'NumberOfRepetitions', 'Timeout', 'DataBlockSize', 'DSCP'];
const IPPING_OUT = [
  'Status',
  'IPAddressUsed',
  'SuccessCount',
  'FailureCount',
  'AverageResponseTime',
  'MinimumResponseTime',
  'MaximumResponseTime',
  'AverageResponseTimeDetailed',
  'MinimumResponseTimeDetailed',
  'MaximumResponseTimeDetailed',
];
const TRACE_IN = ['Interface', 'ProtocolVersion', 'Host', 'NumberOfTries', 'Timeout', 'DataBlockSize', 'DSCP', 'MaxHopCount'];
const TRACE_OUT = [
  'Status',
  'IPAddressUsed',
  'ResponseTime',
  'RouteHops.{i}.Host',
  'RouteHops.{i}.HostAddress',
  'RouteHops.{i}.ErrorCode',
  'RouteHops.{i}.RTTimes',
];
const DOWNLOAD_IN = ['URL', 'AutoActivate', 'Username', 'Password', 'FileSize', 'CheckSumAlgorithm', 'CheckSum'];

const arg = (name: string) => ({ name });

/** Reboot and FactoryReset are root-agnostic CWMP RPCs; the others need their objects on the device. */
const COMMANDS: OfferedCommand[] = [
  { object: 'Device.', command: { name: 'Reboot()', async: true, input: [], output: [] } },
  { object: 'Device.', command: { name: 'FactoryReset()', async: true, input: [], output: [] } },
  {
    object: 'Device.DeviceInfo.FirmwareImage.{i}.',
    command: { name: 'Download()', async: true, input: DOWNLOAD_IN.map(arg), output: [] },
    requires: ['Device.DeviceInfo.FirmwareImage.{i}.'],
  },
  {
    object: 'Device.IP.Diagnostics.',
    command: { name: 'IPPing()', async: true, input: IPPING_IN.map(arg), output: IPPING_OUT.map(arg) },
    requires: ['Device.IP.Diagnostics.IPPing.'],
  },
  {
    object: 'Device.IP.Diagnostics.',
    command: { name: 'TraceRoute()', async: true, input: TRACE_IN.map(arg), output: TRACE_OUT.map(arg) },
    requires: ['Device.IP.Diagnostics.TraceRoute.'],
  },
];

export class CwmpCommandRunner implements CommandRunner {
  private readonly waiters = new Map<string, Waiter[]>();

  constructor(
    /** `scope`: the request the RPC is made for (src/usp/request-scope.ts), for the command's first RPC only. */
    private readonly enqueue: (deviceKey: string, rpc: AcsRequest, scope?: CallScope) => Promise<RpcOutcome>,
    private readonly opts: CommandRunnerOptions,
  ) {}

  /** Feed every Inform and TransferComplete of every device here (the engine's events). */
  deviceEvent(e: DeviceEvent): void {
    const list = this.waiters.get(e.deviceKey);
    if (!list) return;
    for (const w of [...list]) {
      if (w.match(e)) {
        list.splice(list.indexOf(w), 1);
        w.resolve(e);
      }
    }
    if (list.length === 0) this.waiters.delete(e.deviceKey);
  }

  commands(_device: DeviceRecord): OfferedCommand[] {
    return COMMANDS;
  }

  events(): { object: string; event: EventSchema }[] {
    return [{ object: 'Device.', event: { name: 'Boot!', args: ['CommandKey', 'Cause', 'FirmwareUpdated', 'ParameterMap'].map(arg) } }];
  }

  async operate(ctx: RequestContext, d: DeviceRecord, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome> {
    const schemaPath = commandPath.replace(/\.\d+\./g, '.{i}.');
    const scope = ctx.scope;
    switch (schemaPath) {
      case 'Device.Reboot()':
        return this.async(this.reboot(d, commandKey, scope));
      case 'Device.FactoryReset()':
        return this.async(this.factoryReset(d, scope));
      case 'Device.DeviceInfo.FirmwareImage.{i}.Download()': {
        if (!input.URL) return { kind: 'error', errCode: 7027, errMsg: 'Download() needs the URL input argument' };
        return this.async(this.download(d, commandPath, input, commandKey, scope));
      }
      case 'Device.IP.Diagnostics.IPPing()':
        if (!input.Host) return { kind: 'error', errCode: 7027, errMsg: 'IPPing() needs the Host input argument' };
        return this.async(this.diagnostics(d, 'Device.IP.Diagnostics.IPPing.', IPPING_IN, input, scope));
      case 'Device.IP.Diagnostics.TraceRoute()':
        if (!input.Host) return { kind: 'error', errCode: 7027, errMsg: 'TraceRoute() needs the Host input argument' };
        return this.async(this.diagnostics(d, 'Device.IP.Diagnostics.TraceRoute.', TRACE_IN, input, scope));
      default:
        return { kind: 'error', errCode: 7026, errMsg: `unsupported command ${commandPath}` };
    }
  }

  private async<T extends Completion>(p: Promise<T>): OperateOutcome {
    return {
      kind: 'async',
      completion: p.catch((e: unknown) => {
        const c = uspErrorOfRpc(e);
        return { errCode: 7022, errMsg: c.errMsg };
      }),
    };
  }

  /** After a restart: true when the device next boots (a Reboot/FactoryReset that was running), false at the deadline. */
  async awaitBoot(deviceKey: string): Promise<boolean> {
    const e = await this.waitFor(
      deviceKey,
      (x) => x.kind === 'inform' && x.inform.event.some((ev) => ev.eventCode === '1 BOOT' || ev.eventCode === 'M Reboot' || ev.eventCode === '0 BOOTSTRAP'),
    );
    return e !== null;
  }

  /** Resolves with the next matching device event, or null at the deadline. */
  private waitFor(deviceKey: string, match: (e: DeviceEvent) => boolean): Promise<DeviceEvent | null> {
    return new Promise((resolve) => {
      const w: Waiter = { match, resolve: (e) => (clearTimeout(timer), resolve(e)) };
      const list = this.waiters.get(deviceKey) ?? [];
      list.push(w);
      this.waiters.set(deviceKey, list);
      const timer = setTimeout(() => {
        const l = this.waiters.get(deviceKey);
        if (l) {
          const i = l.indexOf(w);
          if (i >= 0) l.splice(i, 1);
          if (l.length === 0) this.waiters.delete(deviceKey);
        }
        resolve(null);
      }, this.opts.completionTimeoutMs);
      // The wait alone must not hold a stopped proxy's process open for its 10 minutes (the running
      // operation is persisted and picked up again after a restart).
      timer.unref();
    });
  }

  private timeoutError(what: string): Completion {
    return { errCode: 7022, errMsg: `${what}: the device did not report back within ${Math.round(this.opts.completionTimeoutMs / 1000)} s` };
  }

  private fault(out: RpcOutcome, what: string): Completion | null {
    if (out.kind === 'fault') return { errCode: 7022, errMsg: `${what} refused: ${describeFault(out.fault)}` };
    return null;
  }

  private async reboot(d: DeviceRecord, commandKey: string, scope: CallScope | undefined): Promise<Completion> {
    const key = commandKey || `usp-${randomBytes(4).toString('hex')}`;
    const back = this.waitFor(d.deviceKey, (e) => e.kind === 'inform' && e.inform.event.some((ev) => ev.eventCode === '1 BOOT' || ev.eventCode === 'M Reboot'));
    const out = await this.enqueue(d.deviceKey, { method: 'Reboot', commandKey: key }, scope);
    const f = this.fault(out, 'Reboot');
    if (f) return f;
    return (await back) ? { output: {} } : this.timeoutError('Reboot');
  }

  private async factoryReset(d: DeviceRecord, scope: CallScope | undefined): Promise<Completion> {
    const back = this.waitFor(
      d.deviceKey,
      (e) => e.kind === 'inform' && e.inform.event.some((ev) => ev.eventCode === '0 BOOTSTRAP' || ev.eventCode === '1 BOOT'),
    );
    const out = await this.enqueue(d.deviceKey, { method: 'FactoryReset' }, scope);
    const f = this.fault(out, 'FactoryReset');
    if (f) return f;
    return (await back) ? { output: {} } : this.timeoutError('FactoryReset');
  }

  private async download(
    d: DeviceRecord,
    commandPath: string,
    input: Record<string, string>,
    commandKey: string,
    scope: CallScope | undefined,
  ): Promise<Completion> {
    const key = commandKey || `usp-dl-${randomBytes(4).toString('hex')}`;
    // Before the RPC: the TransferComplete may come in a later session, after a restart.
    await this.opts.downloadSent?.(d, key, commandPath).catch(() => undefined);
    const done = this.waitFor(
      d.deviceKey,
      (e) => e.kind === 'transferComplete' && (e.message.method === 'AutonomousTransferComplete' || e.message.commandKey === key),
    );
    const out = await this.enqueue(
      d.deviceKey,
      {
        method: 'Download',
        commandKey: key,
        fileType: '1 Firmware Upgrade Image',
        url: input.URL!,
        username: input.Username ?? '',
        password: input.Password ?? '',
        fileSize: Number(input.FileSize ?? '0') || 0,
        targetFileName: '',
        delaySeconds: 0,
        successURL: '',
        failureURL: '',
      },
      scope,
    );
    const f = this.fault(out, 'Download');
    if (f) return f;
    if (out.kind === 'response' && out.response.method === 'DownloadResponse' && out.response.status === 0) return { output: {} };
    const e = await done;
    if (e?.kind !== 'transferComplete') return this.timeoutError('Download');
    const fault = e.message.fault;
    if (fault.faultCode !== 0) return { errCode: uspCodeOfCwmpFault(fault.faultCode), errMsg: `firmware download failed: ${describeFault(fault)}` };
    return { output: {} };
  }

  /** Diagnostics: set the inputs and DiagnosticsState=Requested, wait for 8 DIAGNOSTICS COMPLETE, read the results. */
  private async diagnostics(
    d: DeviceRecord,
    object: string,
    inputs: readonly string[],
    input: Record<string, string>,
    scope: CallScope | undefined,
  ): Promise<Completion> {
    const parameterList = inputs
      .filter((n) => input[n] !== undefined)
      .map((n) => ({
        name: object + n,
        value: input[n]!,
        type: /^(NumberOf|Timeout|DataBlockSize|DSCP|MaxHopCount)/.test(n) ? 'xsd:unsignedInt' : 'xsd:string',
      }));
    parameterList.push({ name: `${object}DiagnosticsState`, value: 'Requested', type: 'xsd:string' });
    return this.runDiagnostics(d, object, parameterList, scope, (list) => {
      const output: Record<string, string> = {};
      for (const p of list) {
        const rel = p.name.slice(object.length);
        if (rel === 'DiagnosticsState') output.Status = p.value;
        else if (!inputs.includes(rel) && !rel.endsWith('NumberOfEntries')) output[rel] = p.value;
      }
      return output;
    });
  }

  /** Input argument names of the diagnostics commands (for the TR-098 mapped backend). */
  static readonly DIAGNOSTICS_INPUTS: Readonly<Record<string, readonly string[]>> = { 'IPPing()': IPPING_IN, 'TraceRoute()': TRACE_IN };

  /**
   * The diagnostics flow on any native object: SetParameterValues of the inputs (with
   * DiagnosticsState=Requested), wait for 8 DIAGNOSTICS COMPLETE, GetParameterValues of the
   * object, then `toOutput` turns the native results into USP output arguments.
   */
  async runDiagnostics(
    d: DeviceRecord,
    object: string,
    parameterList: { name: string; value: string; type: string }[],
    scope: CallScope | undefined,
    toOutput: (results: { name: string; value: string; type: string }[]) => Record<string, string> | Promise<Record<string, string>>,
  ): Promise<Completion> {
    const done = this.waitFor(d.deviceKey, (e) => e.kind === 'inform' && e.inform.event.some((ev) => ev.eventCode === '8 DIAGNOSTICS COMPLETE'));
    const set = await this.enqueue(d.deviceKey, { method: 'SetParameterValues', parameterList, parameterKey: '' }, scope);
    if (set.kind === 'fault') {
      const per = set.fault.setParameterValuesFault
        .map((p) => `${p.parameterName}: ${describeFault({ faultCode: p.faultCode, faultString: p.faultString })}`)
        .join('; ');
      return { errCode: 7022, errMsg: `starting ${object} refused: ${describeFault(set.fault)}${per ? ` (${per})` : ''}` };
    }
    if (!(await done)) return this.timeoutError(object.slice(0, -1));
    const output = await toOutput(await this.opts.readObject(d, object));
    const status = output.Status ?? '';
    if (status.startsWith('Error')) return { errCode: 7022, errMsg: `${object.slice(0, -1)} ended with ${status}` };
    return { output };
  }
}
