import { Reflector } from '@nestjs/core';

/** Marks a route that needs no API key. */
export const Public = Reflector.createDecorator<true>({ transform: () => true });
