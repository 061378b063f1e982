import { Module } from '@nestjs/common';

/** GraphQL for payments at /graphql: filled in by the GraphQL work. */
@Module({})
export class PaymentsGraphqlModule {}
