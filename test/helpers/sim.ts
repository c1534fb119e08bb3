/**
 * The simulated CPE profile tests and benchmarks use by default: the strictest seen in the field
 * (GetParameterValues of full names only, dropping the connection otherwise; no cookies; SOAP-ENV
 * prefix; HTTP/1.0). A test that needs a lenient CPE says so with its own quirks.
 */
import { parseQuirks, type Quirks } from '../../src/tools/sim/quirks.js';

export const STRICT_SIM: Quirks = parseQuirks('strict');

/**
 * The strict profile less `no-cookies`, for tests behind an HTTP load balancer: there a session is
 * found by its cookie (TR-069 3.4.1 lets the ACS rely on one), a CPE that drops it needs a TCP
 * balancer that keeps its connection on one instance (docs/scaling.md).
 */
export const STRICT_SIM_WITH_COOKIES: Quirks = parseQuirks('explicit-names-only,soap-prefix=SOAP-ENV,http10');

/** The strict profile on a CPE that refuses SetParameterAttributes (9000) and leaves it out of GetRPCMethods. */
export const STRICT_SIM_NO_SPA: Quirks = parseQuirks('strict,no-spa');

/** The strict profile on a CPE that takes Notification attributes but never sends 4 VALUE CHANGE. */
export const STRICT_SIM_NO_VALUE_CHANGE: Quirks = parseQuirks('strict,no-value-change');
