// Crypto card hardware facts: hwtype numbers, the function bits TAPQ reports (ap_bus.h
// AP_FUNC_*), and the names zcrypt gives cards ('CEX8P').

export type CardModeLetter = 'C' | 'P' | 'A';

export const AP_DEVICE_TYPE_CEX4 = 10;
export const AP_DEVICE_TYPE_CEX8 = 14;

/** hwtype 10..14 (CEX4..CEX8): the only types cex4card, cex4queue and vfio_ap bind. */
export function isSupportedHwtype(hwtype: number): boolean {
  return hwtype >= AP_DEVICE_TYPE_CEX4 && hwtype <= AP_DEVICE_TYPE_CEX8;
}

// ap_functions bit n is (0x80000000 >> n), as ap_test_bit() reads it.
const funcBit = (n: number) => (0x80000000 >>> n) >>> 0;
export const AP_FUNC_APSC = funcBit(0);
export const AP_FUNC_MEX4K = funcBit(1);
export const AP_FUNC_CRT4K = funcBit(2);
export const AP_FUNC_COPRO = funcBit(3);
export const AP_FUNC_ACCEL = funcBit(4);
export const AP_FUNC_EP11 = funcBit(5);
export const AP_FUNC_APXA = funcBit(6);

export function functionsForMode(mode: CardModeLetter): number {
  switch (mode) {
    case 'C':
      return (AP_FUNC_APSC | AP_FUNC_COPRO | AP_FUNC_APXA) >>> 0;
    case 'P':
      return (AP_FUNC_APSC | AP_FUNC_EP11 | AP_FUNC_APXA) >>> 0;
    case 'A':
      return (AP_FUNC_APSC | AP_FUNC_MEX4K | AP_FUNC_CRT4K | AP_FUNC_ACCEL | AP_FUNC_APXA) >>> 0;
  }
}

/** The mode a card runs in, from its function bits (ap_uevent: accel, then cca, then ep11). */
export function modeFromFunctions(functions: number): CardModeLetter | null {
  if (functions & AP_FUNC_ACCEL) return 'A';
  if (functions & AP_FUNC_COPRO) return 'C';
  if (functions & AP_FUNC_EP11) return 'P';
  return null;
}

export interface CardKind {
  readonly hwtype: number;
  readonly mode: CardModeLetter;
}

const CARD_TYPE_RE = /^CEX([2-8])([CPA])$/;

/** 'CEX8P' -> {hwtype 14, mode P}; the old CEX2/CEX3 generations come as A or C only
 *  (CEX2A=6, CEX2C=7, CEX3A=8, CEX3C=9). Returns null for anything else. */
export function parseCardType(text: string): CardKind | null {
  const m = CARD_TYPE_RE.exec(text);
  if (!m) return null;
  const gen = Number(m[1]);
  const mode = m[2] as CardModeLetter;
  if (gen >= 4) return { hwtype: gen + 6, mode };
  if (mode === 'P') return null;
  return { hwtype: 6 + (gen - 2) * 2 + (mode === 'C' ? 1 : 0), mode };
}

/** zcrypt's type_string: 'CEX<generation><mode>' (zcrypt_cex4.c), for hwtype 10..14. */
export function cardTypeString(hwtype: number, mode: CardModeLetter): string {
  return `CEX${hwtype - 6}${mode}`;
}

export const AP_DEFAULT_MAX_MSG_SIZE = 12 * 1024;
export const DEFAULT_QUEUE_DEPTH = 8;
