import { z } from 'zod';

export const configSchema = z.strictObject({
  /** The newsletter's name: page titles, the mail's From name and List-Id. */
  title: z.string().trim().min(1).max(200),
  /** Display name for From (defaults to the title). */
  fromName: z.string().trim().min(1).max(100).regex(/^[^\r\n]*$/).optional(),
  replyTo: z.email().max(254).optional(),
  /** Postal address shown in every mail's footer (CAN-SPAM and similar laws). */
  address: z.string().trim().min(1).max(500).optional(),
});

export type NewsletterConfig = z.infer<typeof configSchema>;
