// A program outside the Qilin tree: it sees only the installed headers and package.
#include <qilin/core/tensor.h>
#include <qilin/kernels/cpu/isa.h>
#include <qilin/kernels/matmul.h>

#include <cstdio>

int main() {
  using namespace qilin;
  Tensor x = Tensor::empty({1, 32}, DType::f32);
  Tensor w = Tensor::empty({4, 32}, DType::f32);
  Tensor y = Tensor::empty({1, 4}, DType::f32);
  for (int i = 0; i < 32; ++i) x.data_as<float>()[i] = 1.0f;
  for (int i = 0; i < 4 * 32; ++i) w.data_as<float>()[i] = static_cast<float>(i / 32);
  ThreadPool pool(1);
  MatmulWeight weight(w.view());
  matmul(x.view(), weight, y.view(), pool);
  const float* out = y.data_as<float>();
  std::printf("isa=%s y=[%g %g %g %g]\n", std::string(cpu::name_of(cpu::active_isa())).c_str(), out[0], out[1], out[2],
              out[3]);
  return (out[0] == 0.0f && out[1] == 32.0f && out[2] == 64.0f && out[3] == 96.0f) ? 0 : 1;
}
