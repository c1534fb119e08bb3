/** A CPE's side of raw HTTP/1.x over a plain socket: exact bytes out, the reply read by Content-Length. */
import net from 'node:net';
import { once } from 'node:events';

export interface RawReply {
  status: number;
  /** The head as received (status line and headers). */
  headers: string;
  body: string;
}

export async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  return s;
}

/** One POST and its reply on `sock`; `extra` are header lines ("Cookie: session=..."). */
export async function exchange(sock: net.Socket, body: string, extra: string[] = [], version = '1.1'): Promise<RawReply> {
  const b = Buffer.from(body, 'utf8');
  const head = [`POST /acs HTTP/${version}`, 'Host: acs', 'Content-Type: text/xml; charset="utf-8"', `Content-Length: ${b.length}`, ...extra, '', ''].join(
    '\r\n',
  );
  sock.write(Buffer.concat([Buffer.from(head), b]));
  let buf = Buffer.alloc(0);
  for (;;) {
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) continue;
    const headers = buf.subarray(0, end).toString();
    const len = Number(/content-length:\s*(\d+)/i.exec(headers)?.[1] ?? 0);
    if (buf.length < end + 4 + len) continue;
    return { status: Number(headers.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + len).toString('utf8') };
  }
}

/** "session=<id>" from a reply's Set-Cookie. */
export const sessionCookieOf = (r: RawReply): string => /set-cookie:\s*(session=[0-9a-f]+)/i.exec(r.headers)![1]!;
/** The cwmp:ID of a SOAP reply. */
export const cwmpIdOf = (r: RawReply): string => /<cwmp:ID[^>]*>([^<]*)<\/cwmp:ID>/.exec(r.body)![1]!;
