/**
 * Re-prefixes the SOAP envelope namespace of an envelope written by the codec (encodeSoap,
 * which always writes `soap-env`), as other CPE agents write it: `SOAP-ENV`, `soapenv`, `soap`,
 * or the SOAP namespace as the default namespace with no prefix. The cwmp, soap-enc, xsd and
 * xsi prefixes stay. Pure string function.
 *
 * Safe on codec output: element text and attribute values are escaped there (`<` and `"` never
 * appear raw), so `<soap-env:`, `</soap-env:`, `xmlns:soap-env="` and ` soap-env:mustUnderstand="`
 * can only be markup.
 */
const CODEC_PREFIX = 'soap-env';

export function withEnvelopePrefix(xml: string, prefix: string): string {
  if (prefix === CODEC_PREFIX) return xml;
  const el = prefix === '' ? '' : `${prefix}:`;
  return xml
    .replaceAll(`<${CODEC_PREFIX}:`, `<${el}`)
    .replaceAll(`</${CODEC_PREFIX}:`, `</${el}`)
    .replaceAll(`xmlns:${CODEC_PREFIX}="`, prefix === '' ? 'xmlns="' : `xmlns:${prefix}="`)
    .replaceAll(` ${CODEC_PREFIX}:mustUnderstand="`, ` ${el}mustUnderstand="`);
}
