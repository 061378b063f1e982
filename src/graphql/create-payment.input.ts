import { Field, InputType, Int } from '@nestjs/graphql';
import { IsInt, IsNotEmpty, IsOptional, IsPositive, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import type { CreatePaymentDto } from '../payments/create-payment.dto.js';

/**
 * The `createPayment` mutation's input: the REST body's fields and class-validator rules (keep
 * them in step with CreatePaymentDto), checked by the app's global ValidationPipe as for REST.
 */
@InputType()
export class CreatePaymentInput implements CreatePaymentDto {
  // GraphQL's Int is 32-bit: a larger amount is refused as BAD_USER_INPUT before the resolver runs.
  @Field(() => Int, { description: 'Amount in minor units (cents).' })
  @IsInt()
  @IsPositive()
  @Max(Number.MAX_SAFE_INTEGER)
  amount!: number;

  @Field({ description: 'Three upper-case letters, e.g. EUR.' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be 3 upper-case letters' })
  currency!: string;

  @Field()
  @IsString()
  @IsNotEmpty()
  @MaxLength(255)
  customerId!: string;

  @Field(() => Int, { nullable: true, description: 'Milliseconds the mutation waits after writing the payment (demos).' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000)
  processingMs?: number;
}
