/**
 * The frequency band of a TR-098 WLANConfiguration, for grouping WLANConfigurations into the
 * physical radios TR-181 Device.WiFi.Radio.{i} stands for (TR-181 "WiFi.Radio": one row per
 * physical radio; TR-098 has one WLANConfiguration per SSID, each repeating its radio's settings).
 * Pure.
 */

/** TR-181 Radio.OperatingFrequencyBand values the derivation can give. */
export type Band = '2.4GHz' | '5GHz';

export interface BandInputs {
  /** A vendor band parameter ("2.4GHz", "5G", ...). */
  band?: string;
  /** TR-098 Channel (IEEE 802.11 channel number). */
  channel?: string;
  /** TR-098 PossibleChannels ("1-13", "36,40,44,48"). */
  possibleChannels?: string;
  /** TR-098 Standard or a vendor one ("b", "g", "a", "n", "11bgn", "11ac", "a,n,ac"). */
  standard?: string;
}

/** IEEE 802.11 channel numbers: 1-14 are 2.4 GHz, 32-177 are 5 GHz. */
function bandOfChannel(n: number): Band | null {
  if (!Number.isInteger(n)) return null;
  if (n >= 1 && n <= 14) return '2.4GHz';
  if (n >= 32 && n <= 177) return '5GHz';
  return null;
}

function bandOfName(v: string): Band | null {
  const t = v.trim().toLowerCase().replace(/\s+/g, '');
  if (/^2[.,]?4(ghz|g)?$/.test(t)) return '2.4GHz';
  if (/^5(ghz|g)?$/.test(t)) return '5GHz';
  return null;
}

function bandOfStandard(v: string): Band | null {
  // "11bgn" -> b,g,n; "a,n,ac" -> a,n,ac; "802.11ac" -> ac
  const t = v.toLowerCase().replace(/802\.11|ieee/g, '');
  const letters = new Set(
    t
      .replace(/11/g, ',')
      .split(/[^a-z]+/)
      .flatMap((s) => s.match(/ac|ax|be|[abgn]/g) ?? []),
  );
  if (letters.has('b') || letters.has('g')) return '2.4GHz';
  if (letters.has('a') || letters.has('ac')) return '5GHz';
  return null; // n, ax, be: both bands
}

/** The band of one WLANConfiguration, from the most direct evidence it has; null when it cannot tell. */
export function bandOf(v: BandInputs): Band | null {
  if (v.band) {
    const b = bandOfName(v.band);
    if (b) return b;
  }
  if (v.channel && /^\d+$/.test(v.channel.trim()) && Number(v.channel) > 0) {
    const b = bandOfChannel(Number(v.channel));
    if (b) return b;
  }
  if (v.possibleChannels) {
    const first = /\d+/.exec(v.possibleChannels);
    const b = first ? bandOfChannel(Number(first[0])) : null;
    if (b) return b;
  }
  if (v.standard) return bandOfStandard(v.standard);
  return null;
}
