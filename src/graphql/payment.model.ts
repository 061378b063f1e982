import { Field, GraphQLISODateTime, ID, Int, ObjectType } from '@nestjs/graphql';
import type { Payment } from '../payments/payment.entity.js';

/** A payment as GraphQL shows it: the REST view's fields, with `createdAt` a DateTime. */
@ObjectType('Payment')
export class PaymentModel {
  @Field(() => ID)
  id!: string;

  @Field(() => Int, { description: 'Amount in minor units (cents).' })
  amount!: number;

  @Field()
  currency!: string;

  @Field()
  customerId!: string;

  @Field()
  status!: string;

  // A Date, not the entity's ISO string: the DateTime scalar serialises only dates.
  @Field(() => GraphQLISODateTime)
  createdAt!: Date;

  static of(payment: Payment): PaymentModel {
    const { id, amount, currency, customerId, status, createdAt } = payment;
    return Object.assign(new PaymentModel(), { id, amount, currency, customerId, status, createdAt: new Date(createdAt) });
  }
}
