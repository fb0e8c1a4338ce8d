/** Config pieces every receiver's schema may use. */
import type { z } from 'zod';

/** A refinement: no item listed twice, each repeat named by its index. */
export function unique<T>(list: T[], ctx: z.RefinementCtx): void {
  list.forEach((item, index) => {
    if (list.indexOf(item) !== index) ctx.addIssue({ code: 'custom', path: [index], message: `${JSON.stringify(item)} is listed twice` });
  });
}
