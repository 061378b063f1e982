import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsOptional, IsPositive, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

export class CreatePaymentDto {
  // Up to 2^53-1: a larger number is not exact once JSON.parse has read it (2^53+1 arrives as 2^53),
  // and the BIGINT column of every database holds every safe integer.
  @ApiProperty({ type: 'integer', description: 'Amount in minor units (cents), a whole number up to 2^53-1.', example: 1999, minimum: 1, maximum: Number.MAX_SAFE_INTEGER })
  @IsInt()
  @IsPositive()
  @Max(Number.MAX_SAFE_INTEGER)
  amount!: number;

  @ApiProperty({ example: 'EUR', pattern: '^[A-Z]{3}$' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be 3 upper-case letters' })
  currency!: string;

  @ApiProperty({ example: 'cus_42', maxLength: 255 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(255)
  customerId!: string;

  /** Time the handler takes after writing the payment: lets demos and tests hold it in flight. */
  @ApiPropertyOptional({ type: 'integer', description: 'Milliseconds the handler waits after writing the payment (demos).', minimum: 0, maximum: 10_000 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000)
  processingMs?: number;
}
