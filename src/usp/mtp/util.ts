/** Small helpers every MTP uses: a logger that can never break the transport, and an unref'd sleep. */

export type MtpLog = (level: 'debug' | 'info' | 'warn', msg: string, extra?: object) => void;

export function safeLog(log: MtpLog | undefined, level: 'debug' | 'info' | 'warn', msg: string, extra?: object): void {
  try {
    log?.(level, msg, extra);
  } catch {
    /* a logger must never break the MTP */
  }
}

/** A sleep that does not keep the process alive (reconnect backoff). */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
