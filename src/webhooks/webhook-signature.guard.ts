import { createHmac, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { apiError } from '../common/api-error.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { AppConfig } from '../config/app-config.js';

/** The header carrying `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'x-provider-signature';

/** Accepts a delivery only when its signature matches the raw body; anything else is 401. */
@Injectable()
export class WebhookSignatureGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown>; rawBody?: Buffer }>();
    const presented = request.headers[SIGNATURE_HEADER];
    const expected = `sha256=${createHmac('sha256', this.config.webhookSecret).update(request.rawBody ?? Buffer.alloc(0)).digest('hex')}`;
    const valid =
      typeof presented === 'string' &&
      presented.length === expected.length &&
      timingSafeEqual(Buffer.from(presented), Buffer.from(expected));
    if (!valid) throw apiError(401, 'invalid_signature', `A valid ${SIGNATURE_HEADER} header is required.`);
    return true;
  }
}
