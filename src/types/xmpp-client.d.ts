/** The part of @xmpp/client (which ships no types) the proxy and the simulator use. */
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';

  export interface XmlElement {
    name: string;
    attrs: Record<string, string | undefined>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildText(name: string, xmlns?: string): string | null;
    toString(): string;
  }
  export function xml(name: string, attrs?: Record<string, string> | null, ...children: Array<XmlElement | string>): XmlElement;

  export interface IqContext {
    stanza: XmlElement;
    element: XmlElement;
    from: { toString(): string } | null;
  }
  export interface XmppClient extends EventEmitter {
    status: string;
    start(): Promise<unknown>;
    stop(): Promise<void>;
    send(el: XmlElement): Promise<void>;
    jid: { toString(): string } | null;
    reconnect: { stop(): void };
    iqCaller: { request(el: XmlElement, timeoutMs?: number): Promise<XmlElement> };
    iqCallee: { get(ns: string, name: string, handler: (ctx: IqContext) => unknown): void };
  }
  export function client(opts: {
    service: string;
    domain?: string;
    username?: string;
    password?: string;
    resource?: string;
    /** Picks the SASL mechanism itself. */
    credentials?: (authenticate: (c: { username: string; password: string }, mechanism: string) => Promise<void>, mechanisms: string[]) => Promise<void>;
  }): XmppClient;
}
