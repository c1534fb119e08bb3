/**
 * Device.X_<VENDOR>_MigrateToUSP() on every proxied agent (TR-106 3.3 vendor-specific names, the
 * vendor token of interworking.extensionVendor) and its event X_<VENDOR>_Migrated!: the async
 * command runs the migration (service.ts); its OperationComplete carries the steps, their
 * timings and the native Endpoint ID, or a cmd_failure 7022 with the reason and the rollback.
 */
import type { DeviceRecord } from '../store/types.js';
import { obj } from '../usp/dm/schema-builders.js';
import type { DmBackend, ObjectSchema, OperateOutcome, RequestContext } from '../usp/dm/types.js';
import { outputArgs } from './machine.js';
import { MigrationError, type MigrationService } from './service.js';

const OUTPUT = ['Status', 'NativeEndpointID', 'Reason', 'RolledBack', 'Steps', 'DurationMs'];

export class MigrationCommandBackend implements DmBackend {
  readonly prefixes: readonly string[];
  readonly command: string;
  readonly event: string;
  private readonly schema: ObjectSchema[];

  constructor(
    vendor: string,
    private readonly service: MigrationService,
    private readonly deviceByEndpointId: (eid: string) => Promise<DeviceRecord | null>,
  ) {
    this.command = `Device.X_${vendor}_MigrateToUSP()`;
    this.event = `Device.X_${vendor}_Migrated!`;
    this.prefixes = [this.command, this.event];
    this.schema = [
      obj('Device.', [], {
        commands: [{ name: `X_${vendor}_MigrateToUSP()`, async: true, input: [], output: OUTPUT.map((name) => ({ name })) }],
        events: [{ name: `X_${vendor}_Migrated!`, args: [{ name: 'NativeEndpointID' }] }],
      }),
    ];
  }

  async supported(): Promise<readonly ObjectSchema[]> {
    return this.schema;
  }
  async instances(): Promise<number[] | null> {
    return null;
  }
  async get(): Promise<Map<string, string>> {
    return new Map();
  }
  async set(): Promise<{ ok: false; errCode: number; errMsg: string; paramErrs: [] }> {
    return { ok: false, errCode: 7026, errMsg: 'not an object', paramErrs: [] };
  }
  async add(): Promise<{ ok: false; errCode: number; errMsg: string; paramErrs: [] }> {
    return { ok: false, errCode: 7026, errMsg: 'not a table', paramErrs: [] };
  }
  async delete(): Promise<{ ok: false; errCode: number; errMsg: string }> {
    return { ok: false, errCode: 7026, errMsg: 'not a table' };
  }

  async operate(ctx: RequestContext, commandPath: string): Promise<OperateOutcome> {
    if (commandPath !== this.command) return { kind: 'error', errCode: 7026, errMsg: `no command ${commandPath}` };
    const device = await this.deviceByEndpointId(ctx.agentEid);
    if (!device) return { kind: 'error', errCode: 7002, errMsg: `no device behind ${ctx.agentEid}` };
    let done: ReturnType<MigrationService['start']>;
    try {
      done = this.service.start(device);
    } catch (e) {
      if (e instanceof MigrationError) return { kind: 'error', errCode: e.status === 409 ? 7008 : 7022, errMsg: e.message };
      throw e;
    }
    return {
      kind: 'async',
      completion: done.then((s) => {
        const output = outputArgs(s);
        if (s.phase === 'migrated') return { output };
        return { errCode: 7022, errMsg: `migration failed: ${s.reason} (rolled back: ${output.RolledBack}; steps ${output.Steps})` };
      }),
    };
  }
}
