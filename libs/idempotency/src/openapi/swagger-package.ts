/** The `@nestjs/swagger` module, when the application has it installed. */
export type SwaggerPackage = typeof import('@nestjs/swagger');

/**
 * Loads `@nestjs/swagger`, an optional peer, or answers undefined when it is not installed. Only
 * ever imported dynamically: an application without it must be able to import this library.
 */
export async function loadSwagger(importSwagger: () => Promise<SwaggerPackage> = () => import('@nestjs/swagger')): Promise<SwaggerPackage | undefined> {
  try {
    return await importSwagger();
  } catch (error) {
    // Only its absence is expected; a broken installation must still be seen.
    if (isSwaggerMissing(error)) return undefined;
    throw error;
  }
}

function isSwaggerMissing(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && error.message.includes("'@nestjs/swagger'");
}
